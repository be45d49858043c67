#!/bin/sh
# http_page: the status page at / in a real browser (headless chromium): its
# script fetches /status and /runs and shows every stage, its workers, the
# recent runs with progress bars and the control buttons, with nothing loaded
# from elsewhere. Then, over the DevTools protocol (tests/lib/cdp.py), it
# presses restart on a stage, answers the confirm() and the token prompt(), and
# the stage's workers are replaced (new pids). Skipped (exit 77) when chromium
# or python3-websocket is not installed.
. "$ROOT/tests/lib/itest.sh"

CHROME=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -z "$CHROME" ]; then
    echo "skip: chromium is not installed (apt-get install -y chromium)"
    exit 77
fi

PY=/usr/bin/python3
if ! $PY -c 'import websocket; websocket.create_connection' 2>/dev/null; then
    echo "skip: python3-websocket is not installed (apt-get install -y python3-websocket)"
    exit 77
fi
PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
write_conf pgwake.conf <<EOF2
[pgwake]
host = page-1
log_dir = $T/logs
recount_interval = 0
http_listen = 127.0.0.1:$PORT
control_token = page-secret-token

[stage:company_discovery]
command = $TESTWORKER
min_workers = 2
max_workers = 2
idle_timeout = 1h
heartbeat_interval = 1s
heartbeat_timeout = 5s
lease = 30s

[stage:company_research]
command = $TESTWORKER
max_workers = 2
idle_timeout = 1h
heartbeat_interval = 1s
heartbeat_timeout = 5s
lease = 30s
EOF2

start_ready pgwake.conf
run=$(q "INSERT INTO pgwake.runs(stage, params) VALUES ('company_discovery', '{\"fanout\": {\"stage\": \"company_research\", \"count\": 2, \"payload\": {}}}') RETURNING id")
wait_sql "SELECT state = 'done' FROM pgwake.v_runs WHERE id = $run" 20 || fail "run $run not done"
# min_workers = max_workers: the number of its workers is 2, before and after
# the restart (a restart only brings a stage back to min_workers).
wait_sql "SELECT count(*) = 2 FROM pgwake.workers WHERE stage = 'company_discovery' AND state = 'alive' AND pid IS NOT NULL" 10 \
    || fail "not 2 company_discovery workers"
wid=$(q "SELECT id FROM pgwake.workers WHERE stage = 'company_discovery' AND state = 'alive' ORDER BY id LIMIT 1")

note "loading http://127.0.0.1:$PORT/ in $CHROME"
timeout 90 "$CHROME" --headless --no-sandbox --disable-gpu --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$T/chrome-profile" --virtual-time-budget=5000 \
    --dump-dom "http://127.0.0.1:$PORT/" >"$T/dom.html" 2>"$T/chrome.err"
rc=$?
[ $rc = 0 ] || fail "chromium exited $rc: $(tail -5 "$T/chrome.err")"
grep -q '<strong>company_discovery</strong>' "$T/dom.html" || fail "stage company_discovery not rendered: $(head -c 3000 "$T/dom.html")"
grep -q '<strong>company_research</strong>' "$T/dom.html" || fail "stage company_research not rendered"
grep -q 'on page-1' "$T/dom.html" || fail "host not rendered"
grep -q 'database connected' "$T/dom.html" || fail "database state not rendered"
grep -q "$wid" "$T/dom.html" || fail "worker $wid not rendered"
grep -q "<td>$run</td>" "$T/dom.html" || fail "run $run not in the runs table"
grep -q 'class="bar"><span style="width: 100%;">' "$T/dom.html" || fail "no full progress bar"
[ "$(grep -o '<button type="button">restart</button>' "$T/dom.html" | wc -l)" = 3 ] \
    || fail "not one restart button per stage plus one for all"
! grep -q 'page-secret-token' "$T/dom.html" || fail "the control token is in the page"

note "pressing restart on company_discovery in the browser"
alive="stage = 'company_discovery' AND state = 'alive' AND pid IS NOT NULL"
old=$(q "SELECT string_agg(pid::text, ',' ORDER BY pid) FROM pgwake.workers WHERE $alive")
n=$(q "SELECT count(*) FROM pgwake.workers WHERE $alive")
[ "$n" = 2 ] || fail "$n company_discovery workers before the restart, not 2"
# Port 0: chromium picks a free port and writes it into DevToolsActivePort.
timeout 90 "$CHROME" --headless --no-sandbox --disable-gpu --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$T/chrome-cdp" --remote-debugging-port=0 about:blank \
    >"$T/chrome-cdp.out" 2>"$T/chrome-cdp.err" &
CHROME_PID=$!
DAEMON_PIDS="$DAEMON_PIDS $CHROME_PID"
wait_for "[ -s '$T/chrome-cdp/DevToolsActivePort' ]" 20 \
    || fail "chromium opened no DevTools port: $(tail -5 "$T/chrome-cdp.err")"
CDP_PORT=$(head -1 "$T/chrome-cdp/DevToolsActivePort")
$PY "$ROOT/tests/lib/cdp.py" --port "$CDP_PORT" --url "http://127.0.0.1:$PORT/" \
    --click '#stages button:nth-child(3)' --row company_discovery \
    --prompt-text page-secret-token --until-text 'restart company_discovery: done' \
    --timeout 20 >"$T/cdp.out" 2>&1
rc=$?
cat "$T/cdp.out"
[ $rc = 0 ] || fail "cdp.py exited $rc: $(tail -5 "$T/chrome-cdp.err")"
grep -q "^cdp: confirm 'restart stage company_discovery?'" "$T/cdp.out" || fail "no confirm() before the restart"
grep -q '^cdp: prompt ' "$T/cdp.out" || fail "no token prompt()"
wait_for "! kill -0 $CHROME_PID" 10 || { kill -TERM "$CHROME_PID" 2>/dev/null; fail "chromium did not close"; }
wait "$CHROME_PID" 2>/dev/null

wait_for "[ \"\$(q \"SELECT count(*) = $n AND count(*) FILTER (WHERE pid IN ($old)) = 0 FROM pgwake.workers WHERE $alive\")\" = t ]" 20 \
    || fail "company_discovery's workers not replaced: before $old, now $(q "SELECT string_agg(pid::text, ',') FROM pgwake.workers WHERE $alive")"
new=$(q "SELECT string_agg(pid::text, ',' ORDER BY pid) FROM pgwake.workers WHERE $alive")
note "company_discovery's worker pids: $old -> $new"
[ "$(q "SELECT count(*) FROM pgwake.workers WHERE stage = 'company_discovery' AND state = 'dead'")" = 0 ] \
    || fail "a restarted worker was declared dead"
grep -q 'page-secret-token' "$T/daemon.log" && fail "the control token is in the daemon log"
echo "ok"
