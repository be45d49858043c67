#!/bin/sh
# sec_http_exposure: who may call the HTTP port (issue 9, item 9). Off
# loopback without control_token: a warning at start, control calls 403
# (the CLI too), reads open to any Host. On loopback: every endpoint refuses
# a foreign Host (DNS rebinding), a request without Host is served. The CLI
# sends X-Pgwake-Token with control calls only (seen by a recording server).
. "$ROOT/tests/lib/itest.sh"
PY=/usr/bin/python3

code() {  # code METHOD PATH [curl args...]: the HTTP status on stdout
    _m=$1 _p=$2; shift 2
    curl -s --noproxy '*' --max-time 10 -o "$T/body" -w '%{http_code}' -X "$_m" "$@" "http://127.0.0.1:$PORT$_p"
}
stage_conf() {
    cat <<EOF2
[stage:alpha]
command = $TESTWORKER
min_workers = 1
max_workers = 1
idle_timeout = 1h
heartbeat_interval = 1s
heartbeat_timeout = 5s
lease = 30s
stop_timeout = 1s
kill_timeout = 1s
EOF2
}

note "off loopback, no control_token"
PORT=$(free_port)
{ printf '[pgwake]\nhost = exp-1\nlog_dir = %s/logs\nhttp_listen = 0.0.0.0:%s\n\n' "$T" "$PORT"; stage_conf; } \
    | write_conf wide.conf
start_ready wide.conf
grep -q 'control_token is unset: control calls are refused' "$T/daemon.log" || fail "no warning at start"
"$PGWAKE" check -c "$T/wide.conf" -d "$TEST_DSN" 2>&1 | grep -q "warning.*control_token is unset" || fail "check does not warn"
[ "$(code POST /stages/alpha/stop -H 'X-Requested-With: t')" = 403 ] || fail "control call not refused"
grep -q 'control_token' "$T/body" || fail "the refusal does not say what to set: $(cat "$T/body")"
"$PGWAKE" stop -c "$T/wide.conf" alpha >"$T/cli.out" 2>&1 && fail "pgwake stop succeeded: $(cat "$T/cli.out")"
grep -q 'control_token' "$T/cli.out" || fail "pgwake stop does not say why: $(cat "$T/cli.out")"
[ "$(live_workers alpha)" = 1 ] || fail "a refused call stopped the worker"
for p in /healthz /status /metrics /runs /; do
    [ "$(code GET $p -H "Host: monitor.example:$PORT")" = 200 ] || fail "GET $p with any Host: $(cat "$T/body")"
done
stop_daemon
[ "$RC" = 0 ] || fail "daemon exit code $RC"

note "on loopback: foreign Host refused everywhere"
PORT=$(free_port)
{ printf '[pgwake]\nhost = exp-2\nlog_dir = %s/logs\nhttp_listen = 127.0.0.1:%s\n\n' "$T" "$PORT"; stage_conf; } \
    | write_conf lo.conf
start_ready lo.conf "$T/daemon2.log"
grep -q 'control calls are refused' "$T/daemon2.log" && fail "a loopback listener warned"
for p in /healthz /status /metrics /runs /; do
    [ "$(code GET $p -H "Host: rebind.example:$PORT")" = 403 ] || fail "GET $p with a foreign Host not refused"
    [ "$(code GET $p -H "Host: localhost:$PORT")" = 200 ] || fail "GET $p with localhost refused"
    [ "$(code GET $p -H 'Host:')" = 200 ] || fail "GET $p without Host refused"
done
[ "$(code POST /stages/alpha/restart -H 'X-Requested-With: t' -H "Host: rebind.example:$PORT")" = 403 ] \
    || fail "control call with a foreign Host not refused"
[ "$(code POST /stages/alpha/restart -H 'X-Requested-With: t')" = 200 ] || fail "loopback control refused: $(cat "$T/body")"
stop_daemon
[ "$RC" = 0 ] || fail "daemon exit code $RC"

note "the CLI sends the token with control calls only"
PORT=$(free_port)
$PY - "$PORT" "$T/seen" <<'PYEOF' &
import http.server, json, sys
port, out = int(sys.argv[1]), sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def answer(self, body):
        with open(out, "a") as f:
            f.write("%s %s token=%s\n" % (self.command, self.path, self.headers.get("X-Pgwake-Token")))
        b = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)
    def do_GET(self):
        self.answer({"host": "x", "database": {"connected": True}, "maintenance": False, "stages": []})
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.answer({"ok": True, "action": "stop", "stages": []})
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
PYEOF
DAEMON_PIDS="$DAEMON_PIDS $!"
printf '[pgwake]\nhost = exp-3\nlog_dir = %s/logs\nhttp_listen = 127.0.0.1:%s\ncontrol_token = tok-XYZ\n\n[stage:alpha]\ncommand = /bin/true\n' \
    "$T" "$PORT" | write_conf cli.conf
wait_for "curl -s --noproxy '*' -o /dev/null http://127.0.0.1:$PORT/status" 10 || fail "recorder did not start"
rm -f "$T/seen"
"$PGWAKE" status -c "$T/cli.conf" -d "$TEST_DSN" >/dev/null 2>&1
"$PGWAKE" stop -c "$T/cli.conf" alpha >/dev/null 2>&1
grep -q '^GET /status token=None$' "$T/seen" || fail "status sent the token: $(cat "$T/seen")"
grep -q '^POST /stages/alpha/stop token=tok-XYZ$' "$T/seen" || fail "stop did not send the token: $(cat "$T/seen")"
echo ok
