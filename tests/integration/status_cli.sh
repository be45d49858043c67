#!/bin/sh
# status_cli: `pgwake status` exits 0 with every stage running, 1 with a FATAL
# stage (shown with its reason), 3 when the daemon is not running: then it
# shows what the database knows (stage_state, live worker rows) and says the
# daemon is not running; --json prints the daemon's JSON. `pgwake runs` shows
# recent runs with a progress bar per stage, newest first, --limit N of them.
. "$ROOT/tests/lib/itest.sh"

PY=/usr/bin/python3
PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

write_conf pgwake.conf <<EOF2
[pgwake]
host = status-1
log_dir = $T/logs
recount_interval = 0
http_listen = 127.0.0.1:$PORT

[stage:alpha]
command = $TESTWORKER
max_workers = 2
idle_timeout = 1h
heartbeat_interval = 1s
heartbeat_timeout = 5s
lease = 30s

[stage:crashy]
command = $TESTWORKER --exit-code 1
max_workers = 1
restart_delay = 100ms
restart_delay_max = 200ms
max_restarts = 2
restart_window = 1m
heartbeat_interval = 1s
heartbeat_timeout = 5s
lease = 30s
EOF2
st() { "$PGWAKE" status -c "$T/pgwake.conf" -d "$TEST_DSN" "$@" >"$T/out" 2>"$T/err"; }

start_ready pgwake.conf

note "every stage running: exit 0"
st; rc=$?
[ $rc = 0 ] || fail "status exited $rc: $(cat "$T/out" "$T/err")"
grep -Eq '^STAGE +STATE +PENDING +WORKERS' "$T/out" || fail "no table header: $(cat "$T/out")"
grep -Eq '^alpha +RUNNING +0 +0/2' "$T/out" || fail "no alpha line: $(cat "$T/out")"
grep -Eq '^crashy +RUNNING' "$T/out" || fail "no crashy line: $(cat "$T/out")"
st --json; rc=$?
[ $rc = 0 ] || fail "status --json exited $rc"
$PY -c "import json; j=json.load(open('$T/out')); exit(0 if j['host'] == 'status-1' and [s['name'] for s in j['stages']] == ['alpha', 'crashy'] else 1)" \
    || fail "status --json: $(cat "$T/out")"

note "a busy worker's task and the pending count"
busy=$("$PGWAKE" enqueue -d "$TEST_DSN" alpha '{"sleep_ms": 5000}')
wait_sql "SELECT status = 'leased' FROM pgwake.tasks WHERE id = $busy" 10 || fail "task not claimed"
wid=$(q "SELECT lease_owner FROM pgwake.tasks WHERE id = $busy")
st
grep -Eq "^  $wid +(STARTING|BUSY) +pid [0-9]+, uptime 0:00:0[0-9], task $busy\$" "$T/out" \
    || fail "busy worker not shown: $(cat "$T/out")"

note "a FATAL stage: exit 1, with the reason"
"$PGWAKE" enqueue -d "$TEST_DSN" crashy '{}' >/dev/null
wait_sql "SELECT state = 'fatal' FROM pgwake.stage_state WHERE stage = 'crashy'" 20 || fail "crashy not FATAL"
st; rc=$?
[ $rc = 1 ] || fail "status with a FATAL stage exited $rc"
grep -Eq '^crashy +FATAL +1 +0/1 .*2 crashes within' "$T/out" || fail "FATAL not shown: $(cat "$T/out")"
grep -Eq '^alpha +RUNNING' "$T/out" || fail "alpha line: $(cat "$T/out")"

note "a backlog past 10,000 is counted up to it and shown as 10000+"
q "INSERT INTO pgwake.tasks (stage, payload) SELECT 'crashy', '{}' FROM generate_series(1, 10000)" >/dev/null
st
grep -Eq '^crashy +FATAL +10000\+ +0/1 ' "$T/out" || fail "capped backlog: $(cat "$T/out")"
st --json
$PY -c "import json; s={x['name']: x for x in json.load(open('$T/out'))['stages']}; exit(0 if (s['crashy']['pending'], s['crashy']['pending_capped'], s['alpha']['pending_capped']) == (10000, True, False) else 1)" \
    || fail "status --json with a capped backlog: $(cat "$T/out")"
q "DELETE FROM pgwake.tasks WHERE stage = 'crashy' AND id > (SELECT min(id) FROM pgwake.tasks WHERE stage = 'crashy')" >/dev/null

note "pgwake runs"
r1=$(q "INSERT INTO pgwake.runs(stage, params) VALUES ('alpha', '{}') RETURNING id")
r2=$(q "INSERT INTO pgwake.runs(stage, params) VALUES ('alpha', '{\"fanout\": {\"stage\": \"alpha\", \"count\": 3, \"payload\": {}}}') RETURNING id")
wait_sql "SELECT count(*) = 2 FROM pgwake.v_runs WHERE state = 'done'" 20 || fail "runs not done"
"$PGWAKE" runs -d "$TEST_DSN" >"$T/out" 2>&1 || fail "pgwake runs: $(cat "$T/out")"
grep -Eq "^$r2 +done .* 4/4 done" "$T/out" || fail "run $r2 line: $(cat "$T/out")"
grep -Eq '^  alpha +\[#{20}\] 4/4$' "$T/out" || fail "no full progress bar: $(cat "$T/out")"
[ "$(grep -nE "^($r1|$r2) " "$T/out" | head -1 | cut -d: -f2 | cut -d' ' -f1)" = "$r2" ] || fail "not newest first"
"$PGWAKE" runs -d "$TEST_DSN" --limit 1 >"$T/out" 2>&1 || fail "pgwake runs --limit 1"
grep -Eq "^$r2 " "$T/out" && ! grep -Eq "^$r1 " "$T/out" || fail "--limit 1: $(cat "$T/out")"
"$PGWAKE" runs -d "$TEST_DSN" --limit 0 >/dev/null 2>&1
[ $? = 2 ] || fail "--limit 0 is not a usage error"
q "INSERT INTO pgwake.runs(stage, params) VALUES ('crashy', '{}')" >/dev/null
"$PGWAKE" runs -d "$TEST_DSN" --limit 1 >"$T/out" 2>&1
grep -Eq '^  crashy +\[\.{20}\] 0/1$' "$T/out" || fail "no empty progress bar: $(cat "$T/out")"

note "daemon killed: exit 3 and what the database knows"
kill -KILL "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null
st; rc=$?
[ $rc = 3 ] || fail "status with no daemon exited $rc: $(cat "$T/out" "$T/err")"
grep -q "pgwake daemon not running (http://127.0.0.1:$PORT unreachable" "$T/out" || fail "no 'not running': $(cat "$T/out")"
grep -Eq '^crashy +FATAL' "$T/out" || fail "crashy's state not read from the database: $(cat "$T/out")"
grep -Eq '^alpha +RUNNING' "$T/out" || fail "alpha's state not read from the database: $(cat "$T/out")"
grep -Eq "^  $wid +" "$T/out" || fail "the worker row of $wid not shown: $(cat "$T/out")"
st --json; rc=$?
[ $rc = 3 ] || fail "status --json with no daemon exited $rc"
grep -q 'pgwake daemon not running' "$T/err" || fail "--json: no 'not running' on stderr"
$PY -c "import json; j=json.load(open('$T/out')); exit(0 if j['daemon_running'] is False and j['stages'][0]['name'] == 'alpha' else 1)" \
    || fail "fallback JSON: $(cat "$T/out")"

note "neither daemon nor database: still exit 3"
"$PGWAKE" status -c "$T/pgwake.conf" -d "$TEST_DSN dbname=pgwake_no_such_db" >"$T/out" 2>&1
rc=$?; [ $rc = 3 ] || fail "status with nothing reachable exited $rc"
grep -q 'pgwake daemon not running' "$T/out" || fail "printed: $(cat "$T/out")"
echo "ok"
