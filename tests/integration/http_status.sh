#!/bin/sh
# http_status: the daemon's reads on http_listen. /healthz is 200 once ready
# and 503 (with the reason) while the database is unreachable; /status has the
# SPEC's shape, shows a busy worker's task and pending work from the database
# (and answers at once, with those fields null, without a database); /metrics
# names follow Prometheus conventions and its counters rise; /runs and the
# page at / answer; unknown paths are 404 and wrong methods 405.
. "$ROOT/tests/lib/itest.sh"

PY=/usr/bin/python3
PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL="http://127.0.0.1:$PORT"

# get PATH [curl args...]: the body into $T/body, the status code on stdout.
get() {
    _p=$1; shift
    curl -s --noproxy '*' --max-time 10 -o "$T/body" -w '%{http_code}' "$@" "$URL$_p"
}
# pycheck EXPR: evaluates a Python expression over j = the JSON in $T/body.
pycheck() {
    $PY -c "import json,sys; j=json.load(open('$T/body')); sys.exit(0 if ($1) else 1)" \
        || { echo "--- body"; cat "$T/body"; fail "check failed: $1"; }
}
# metric NAME_WITH_LABELS: its value in $T/metrics (empty when absent).
metric() { awk -v n="$1" '$1 == n {print $2; exit}' "$T/metrics"; }

write_conf pgwake.conf <<EOF2
[pgwake]
host = http-1
log_dir = $T/logs
recount_interval = 0
http_listen = 127.0.0.1:$PORT

[stage:alpha]
command = $TESTWORKER
max_workers = 1
idle_timeout = 1h
heartbeat_interval = 1s
heartbeat_timeout = 5s
lease = 30s

[stage:beta]
command = $TESTWORKER
max_workers = 2
idle_timeout = 1h
heartbeat_interval = 1s
heartbeat_timeout = 5s
lease = 30s
EOF2

start_ready pgwake.conf
grep -q "http: listening on 127.0.0.1:$PORT" "$T/daemon.log" || fail "no 'listening' line"

note "/healthz once ready"
[ "$(get /healthz)" = 200 ] || fail "/healthz not 200: $(cat "$T/body")"
[ "$(cat "$T/body")" = ok ] || fail "/healthz body: $(cat "$T/body")"

note "/status shape with no worker"
[ "$(get /status)" = 200 ] || fail "/status not 200"
pycheck "j['host'] == 'http-1' and j['database']['connected'] is True"
# The only daemon on this database takes maintenance within maintenance_poll.
wait_for "get /status >/dev/null && $PY -c \"import json; exit(0 if json.load(open('$T/body'))['maintenance'] is True else 1)\"" 10 \
    || fail "maintenance not reported as held: $(cat "$T/body")"
pycheck "[s['name'] for s in j['stages']] == ['alpha', 'beta']"
pycheck "all(s['state'] == 'running' and s['pending'] == 0 and s['workers'] == [] and s['restarts'] == 0 for s in j['stages'])"

note "an idle worker, then a busy one: its task and the pending work"
id=$("$PGWAKE" enqueue -d "$TEST_DSN" alpha '{}')
wait_sql "SELECT status = 'done' FROM pgwake.tasks WHERE id = $id" 10 || fail "first task not done"
wait_for "get /status >/dev/null && $PY -c \"import json; j=json.load(open('$T/body')); exit(0 if j['stages'][0]['workers'] and j['stages'][0]['workers'][0]['state'] == 'idle' else 1)\"" 10 \
    || fail "alpha's worker never idle in /status"
get /metrics >/dev/null && cp "$T/body" "$T/metrics"
wakes0=$(metric 'pgwake_worker_wakes_total{stage="alpha"}')
notif0=$(metric 'pgwake_notifications_total{channel="pgwake_task"}')
busy=$("$PGWAKE" enqueue -d "$TEST_DSN" alpha '{"sleep_ms": 4000}')
wait_sql "SELECT status = 'leased' FROM pgwake.tasks WHERE id = $busy" 10 || fail "long task not claimed"
"$PGWAKE" enqueue -d "$TEST_DSN" alpha '{}' >/dev/null
"$PGWAKE" enqueue -d "$TEST_DSN" alpha '{}' >/dev/null
[ "$(get /status)" = 200 ] || fail "/status not 200"
pid=$(q "SELECT pid FROM pgwake.workers WHERE stage = 'alpha' AND state = 'alive'")
pycheck "j['stages'][0]['pending'] == 2"
pycheck "len(j['stages'][0]['workers']) == 1"
pycheck "j['stages'][0]['workers'][0]['state'] == 'busy' and j['stages'][0]['workers'][0]['task'] == $busy"
pycheck "j['stages'][0]['workers'][0]['pid'] == $pid and j['stages'][0]['workers'][0]['rss_bytes'] > 0"
pycheck "j['stages'][0]['workers'][0]['uptime_s'] >= 0 and j['stages'][0]['workers'][0]['id'].startswith('')"

note "/metrics: names, types and rising counters"
[ "$(get /metrics)" = 200 ] || fail "/metrics not 200"
cp "$T/body" "$T/metrics"
for name in pgwake_ready pgwake_database_up pgwake_database_reconnects_total \
            pgwake_notifications_total pgwake_notifications_ignored_total \
            pgwake_notifications_unparseable_total pgwake_workers pgwake_worker_spawns_total \
            pgwake_worker_exits_total pgwake_worker_crashes_total pgwake_stage_restarts_total \
            pgwake_worker_wakes_total pgwake_stage_recounts_total pgwake_stage_fast_paths_total \
            pgwake_lease_releases_total pgwake_wake_latency_seconds \
            pgwake_log_lines_dropped_total pgwake_http_connections pgwake_http_accept_pauses_total; do
    grep -q "^# TYPE $name " "$T/metrics" || fail "no metric family $name"
done
! grep -v '^#' "$T/metrics" | grep -Ev '^pgwake_[a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? [0-9.e+-]+$' \
    || fail "a line that is not Prometheus text"
grep '^# TYPE' "$T/metrics" | awk '$4 == "counter" && $3 !~ /_total$/ {bad=1} END {exit bad}' \
    || fail "a counter not ending in _total"
[ "$(metric pgwake_database_up)" = 1 ] || fail "pgwake_database_up not 1"
[ "$(metric 'pgwake_workers{stage="alpha",state="busy"}')" = 1 ] || fail "alpha busy workers not 1"
[ "$(metric 'pgwake_worker_spawns_total{stage="alpha"}')" -ge 1 ] || fail "no alpha spawn counted"
[ "$(metric 'pgwake_worker_wakes_total{stage="alpha"}')" -gt "$wakes0" ] || fail "wakes did not rise"
[ "$(metric 'pgwake_notifications_total{channel="pgwake_task"}')" -ge $((notif0 + 3)) ] \
    || fail "pgwake_task notifications did not rise by 3"
[ "$(metric 'pgwake_stage_state{stage="beta",state="running"}')" = 1 ] || fail "beta not running in metrics"
count=$(metric 'pgwake_wake_latency_seconds_count{stage="alpha"}')
[ "$count" -ge 1 ] || fail "no notification-to-W latency observed for alpha"
[ "$(metric 'pgwake_wake_latency_seconds_bucket{stage="alpha",le="+Inf"}')" = "$count" ] \
    || fail "+Inf bucket differs from the count"

note "bad and foreign notifications are counted"
psql -X -q -d "$TEST_DSN" -c "NOTIFY pgwake_task, 'Bad Stage!'" -c "NOTIFY pgwake_task, 'not_here'"
wait_for "get /metrics >/dev/null && grep -q '^pgwake_notifications_unparseable_total 1\$' '$T/body'" 5 \
    || fail "unparseable notification not counted"
grep -q '^pgwake_notifications_ignored_total 1$' "$T/body" || fail "foreign notification not counted"

note "a slow database: /status answers after 3 s without it; a client that leaves is survived"
psql -X -q -d "$TEST_DSN" -c "BEGIN" -c "LOCK TABLE pgwake.tasks IN ACCESS EXCLUSIVE MODE" \
    -c "SELECT pg_sleep(6)" -c "COMMIT" >/dev/null &
locker=$!
sleep 0.5
curl -s --noproxy '*' --max-time 1 -o /dev/null "$URL/status"
t0=$(date +%s%N)
[ "$(get /status)" = 200 ] || fail "/status with a slow database not 200"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
# It joins the query the first request started 1 s before (coalesced), so
# its answer comes when that one ends: 3 s after the first (the answer's own
# timeout), or at 2 s, the daemon's lock_timeout on its main connection.
[ $ms -ge 500 ] && [ $ms -lt 5500 ] || fail "/status with a slow database took $ms ms"
pycheck "j['database']['connected'] is True and all(s['pending'] is None for s in j['stages'])"
pycheck "all(w['task'] is None for s in j['stages'] for w in s['workers'])"
wait $locker
[ "$(get /healthz)" = 200 ] || fail "/healthz after the slow database"
[ "$(get /status)" = 200 ] || fail "/status after the slow database"
pycheck "j['stages'][0]['pending'] is not None"

note "/runs and the page"
run=$(q "INSERT INTO pgwake.runs(stage, params) VALUES ('beta', '{}') RETURNING id")
wait_sql "SELECT state = 'done' FROM pgwake.v_runs WHERE id = $run" 10 || fail "run $run not done"
[ "$(get '/runs?limit=5')" = 200 ] || fail "/runs not 200"
pycheck "j['runs'][0]['id'] == $run and j['runs'][0]['state'] == 'done' and j['runs'][0]['progress'] == [{'stage': 'beta', 'done': 1, 'total': 1}]"
[ "$(get '/runs?limit=0')" = 400 ] || fail "/runs?limit=0 not 400"
[ "$(get /)" = 200 ] || fail "/ not 200"
grep -q '<title>pgwake</title>' "$T/body" || fail "no status page"
grep -q 'sessionStorage' "$T/body" || fail "page keeps no token in sessionStorage"
! grep -Eq '(src|href)="(https?:)?//' "$T/body" || fail "page loads external assets"

note "404 and 405"
[ "$(get /nope)" = 404 ] || fail "/nope not 404"
[ "$(get /status -X POST -H 'X-Requested-With: x')" = 405 ] || fail "POST /status not 405"
[ "$(get /healthz -X DELETE)" = 405 ] || fail "DELETE /healthz not 405"

note "without a database: /healthz 503 with the reason, /status at once with nulls"
PORT2=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
sed -e "s/^http_listen = .*/http_listen = 127.0.0.1:$PORT2/" -e 's/^host = .*/host = http-2/' \
    "$T/pgwake.conf" | write_conf nodb.conf
"$PGWAKE" run -c "$T/nodb.conf" -d "$TEST_DSN dbname=pgwake_no_such_db" >"$T/daemon-nodb.log" 2>&1 &
DAEMON_PIDS="$DAEMON_PIDS $!"
URL="http://127.0.0.1:$PORT2"
wait_for "[ \"\$(get /healthz)\" = 503 ]" 10 || fail "/healthz not 503 without a database"
grep -q 'database not connected' "$T/body" || fail "/healthz gives no reason: $(cat "$T/body")"
t0=$(date +%s%N)
[ "$(get /status)" = 200 ] || fail "/status without a database not 200"
[ $(( ($(date +%s%N) - t0) / 1000000 )) -lt 2000 ] || fail "/status waited for an absent database"
pycheck "j['database']['connected'] is False and j['database']['last_error']"
pycheck "all(s['pending'] is None for s in j['stages'])"
[ "$(get /runs)" = 503 ] || fail "/runs without a database not 503"

note "a port in use is a start-up failure"
sed -e 's/^host = .*/host = http-3/' "$T/pgwake.conf" | write_conf busyport.conf
timeout 10 "$PGWAKE" run -c "$T/busyport.conf" -d "$TEST_DSN" >"$T/busyport.log" 2>&1
rc=$?
[ "$rc" = 1 ] || fail "a daemon whose port is taken exited $rc"
grep -q "unable to listen on 127.0.0.1:$PORT: Address already in use" "$T/busyport.log" \
    || fail "no 'unable to listen' message: $(cat "$T/busyport.log")"
echo "ok"
