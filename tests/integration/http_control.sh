#!/bin/sh
# http_control: POST /stages/NAME/{start,stop,restart} and the commands over
# it. Refused with 403: a plain form post (no custom header, no JSON), a
# missing or wrong X-Pgwake-Token, a foreign Host or Origin; 404 for an unknown
# stage (the command exits 2), 405 for GET. `pgwake stop` persists in
# pgwake.stage_state and survives a daemon restart until `pgwake start`;
# `pgwake restart` replaces every worker (new pids); `all` acts on every stage;
# an unreachable daemon is exit 1.
. "$ROOT/tests/lib/itest.sh"

PY=/usr/bin/python3
PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL="http://127.0.0.1:$PORT"
TOKEN=s3cret-token

# post PATH [curl args...]: the body into $T/body, the status code on stdout.
post() {
    _p=$1; shift
    curl -s --noproxy '*' --max-time 10 -o "$T/body" -w '%{http_code}' -X POST "$@" "$URL$_p"
}
expect() {  # expect CODE WHAT PATH [curl args...]
    _code=$1 _what=$2; shift 2
    _got=$(post "$@")
    [ "$_got" = "$_code" ] || fail "$_what: HTTP $_got, expected $_code: $(cat "$T/body")"
}
state_of() { q "SELECT state FROM pgwake.stage_state WHERE host = 'ctl-1' AND stage = '$1'"; }
pids() { q "SELECT string_agg(pid::text, ',' ORDER BY pid) FROM pgwake.workers WHERE stage = '$1' AND state = 'alive' AND pid IS NOT NULL"; }

write_conf pgwake.conf <<EOF2
[pgwake]
host = ctl-1
log_dir = $T/logs
recount_interval = 0
http_listen = 127.0.0.1:$PORT
control_token = $TOKEN

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

[stage:beta]
command = $TESTWORKER
min_workers = 2
max_workers = 2
idle_timeout = 1h
heartbeat_interval = 1s
heartbeat_timeout = 5s
lease = 30s
stop_timeout = 1s
kill_timeout = 1s
EOF2
grep -v '^control_token' "$T/pgwake.conf" | write_conf notoken.conf

start_ready pgwake.conf
wait_sql "SELECT count(*) = 3 FROM pgwake.workers WHERE state = 'alive' AND pid IS NOT NULL" 20 \
    || fail "min_workers not started"

note "refused control calls"
expect 403 "plain form post" /stages/alpha/stop -d 'x=1'
expect 403 "form post with the token as a field" /stages/alpha/stop -d "token=$TOKEN"
expect 403 "custom header, no token" /stages/alpha/stop -H 'X-Requested-With: test'
grep -q 'missing X-Pgwake-Token' "$T/body" || fail "no reason given: $(cat "$T/body")"
expect 403 "JSON body, no token" /stages/alpha/stop -H 'Content-Type: application/json' -d '{}'
expect 403 "wrong token" /stages/alpha/stop -H "X-Pgwake-Token: ${TOKEN}x"
expect 403 "token prefix" /stages/alpha/stop -H "X-Pgwake-Token: s3cret"
expect 403 "foreign Host" /stages/alpha/stop -H "X-Pgwake-Token: $TOKEN" -H "Host: evil.example:$PORT"
expect 403 "loopback name, wrong port" /stages/alpha/stop -H "X-Pgwake-Token: $TOKEN" -H "Host: localhost:1"
expect 403 "foreign Origin" /stages/alpha/stop -H "X-Pgwake-Token: $TOKEN" -H 'Origin: http://evil.example'
expect 405 "GET on a control call" /stages/alpha/stop -X GET -H "X-Pgwake-Token: $TOKEN"
expect 404 "unknown stage" /stages/nosuch/stop -H "X-Pgwake-Token: $TOKEN"
expect 404 "unknown action" /stages/alpha/pause -H "X-Pgwake-Token: $TOKEN"
[ "$(state_of alpha)" = running ] || fail "a refused call changed alpha: $(state_of alpha)"
[ "$(live_workers alpha)" = 1 ] || fail "a refused call stopped alpha's worker"

note "accepted: loopback names and the listen address"
expect 200 "Host localhost" /stages/alpha/start -H "X-Pgwake-Token: $TOKEN" -H "Host: localhost:$PORT" \
    -H "Origin: http://localhost:$PORT"
expect 200 "Host [::1]" /stages/alpha/start -H "X-Pgwake-Token: $TOKEN" -H "Host: [::1]:$PORT"
$PY -c "import json; j=json.load(open('$T/body')); exit(0 if j['ok'] and j['stages'][0]['name'] == 'alpha' and j['stages'][0]['state'] == 'running' else 1)" \
    || fail "control answer: $(cat "$T/body")"

note "the commands: bad names and a missing token"
"$PGWAKE" stop -c "$T/pgwake.conf" nosuch >"$T/out" 2>&1
rc=$?; [ $rc = 2 ] || fail "stop of an unknown stage exited $rc: $(cat "$T/out")"
"$PGWAKE" stop -c "$T/pgwake.conf" 'Bad!' >"$T/out" 2>&1
rc=$?; [ $rc = 2 ] || fail "stop of an invalid name exited $rc"
"$PGWAKE" stop -c "$T/notoken.conf" alpha >"$T/out" 2>&1
rc=$?; [ $rc = 1 ] || fail "stop without the token exited $rc"
grep -q 'missing X-Pgwake-Token' "$T/out" || fail "no reason printed: $(cat "$T/out")"

note "pgwake stop alpha: persisted, and it outlives a daemon restart"
"$PGWAKE" stop -c "$T/pgwake.conf" alpha >"$T/out" 2>&1 || fail "pgwake stop alpha: $(cat "$T/out")"
grep -q '^alpha: stopped' "$T/out" || fail "stop printed: $(cat "$T/out")"
wait_for "[ \"\$(state_of alpha)\" = stopped ]" 5 || fail "stage_state not stopped"
wait_for "[ \"\$(live_workers alpha)\" = 0 ]" 10 || fail "alpha's worker still alive"
id=$("$PGWAKE" enqueue -d "$TEST_DSN" alpha '{}')
"$PGWAKE" status -c "$T/pgwake.conf" >"$T/out" 2>&1
rc=$?; [ $rc = 1 ] || fail "status with a stopped stage exited $rc"
grep -Eq '^alpha +STOPPED' "$T/out" || fail "status does not show alpha STOPPED: $(cat "$T/out")"
stop_daemon
[ "$RC" = 0 ] || fail "daemon exit $RC"
: >"$T/daemon.log"
start_ready pgwake.conf
grep -q 'alpha: stage stays stopped' "$T/daemon.log" || fail "restart did not keep alpha stopped"
wait_sql "SELECT count(*) = 2 FROM pgwake.workers WHERE stage = 'beta' AND state = 'alive' AND pid IS NOT NULL" 20 \
    || fail "beta not started after the restart"
sleep 1
[ "$(live_workers alpha)" = 0 ] || fail "alpha started although stopped"
[ "$(q "SELECT status FROM pgwake.tasks WHERE id = $id")" = pending ] || fail "alpha's task ran while stopped"
"$PGWAKE" start -c "$T/pgwake.conf" alpha >"$T/out" 2>&1 || fail "pgwake start alpha: $(cat "$T/out")"
grep -q '^alpha: running' "$T/out" || fail "start printed: $(cat "$T/out")"
wait_sql "SELECT status = 'done' FROM pgwake.tasks WHERE id = $id" 10 || fail "alpha's task not done after start"
[ "$(state_of alpha)" = running ] || fail "stage_state not running after start"

note "pgwake restart beta: every worker replaced"
old=$(pids beta)
"$PGWAKE" restart -c "$T/pgwake.conf" beta >"$T/out" 2>&1 || fail "pgwake restart beta: $(cat "$T/out")"
wait_for "[ \"\$(q \"SELECT count(*) FROM pgwake.workers WHERE stage = 'beta' AND state = 'alive' AND pid IS NOT NULL AND pid NOT IN ($old)\")\" = 2 ]" 20 \
    || fail "beta's workers not replaced: before $old, now $(pids beta)"
[ "$(q "SELECT count(*) FROM pgwake.workers WHERE stage = 'beta' AND state = 'dead'")" = 0 ] \
    || fail "a restarted worker was declared dead"

note "all"
"$PGWAKE" stop -c "$T/pgwake.conf" all >"$T/out" 2>&1 || fail "pgwake stop all: $(cat "$T/out")"
[ "$(grep -c ': stopped' "$T/out")" = 2 ] || fail "stop all printed: $(cat "$T/out")"
wait_for "[ \"\$(q \"SELECT count(*) FROM pgwake.stage_state WHERE host = 'ctl-1' AND state = 'stopped'\")\" = 2 ]" 5 \
    || fail "stop all not persisted"
"$PGWAKE" start -c "$T/pgwake.conf" all >/dev/null 2>&1 || fail "pgwake start all"
wait_sql "SELECT count(*) = 3 FROM pgwake.workers WHERE state = 'alive' AND pid IS NOT NULL" 20 \
    || fail "workers not back after start all"

note "an unreachable daemon"
stop_daemon
"$PGWAKE" restart -c "$T/pgwake.conf" alpha >"$T/out" 2>&1
rc=$?; [ $rc = 1 ] || fail "restart with no daemon exited $rc"
grep -q "pgwake daemon not running (http://127.0.0.1:$PORT unreachable" "$T/out" || fail "printed: $(cat "$T/out")"
echo "ok"
