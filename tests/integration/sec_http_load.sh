#!/bin/sh
# sec_http_load: 2,000 idle HTTP connections (slowloris) against a daemon
# with a low fd limit (issue 9, item 8). The connection cap keeps HTTP from
# taking the workers' fds; spawns that still meet EMFILE are backed off and
# never counted, so the stage (max_restarts = 2) never goes FATAL and every
# task is done; the loop does not spin (its CPU time stays small); once the
# clients leave, /healthz answers again. With only 4 fds to spare, accept
# itself meets EMFILE: accepting pauses instead of spinning, and resumes.
. "$ROOT/tests/lib/itest.sh"
PY=/usr/bin/python3
PORT=$(free_port)
write_conf pgwake.conf <<EOF2
[pgwake]
host = load-1
log_dir = $T/logs
recount_interval = 0
http_listen = 127.0.0.1:$PORT

[stage:a]
command = $TESTWORKER
min_workers = 0
max_workers = 8
idle_timeout = 2s
heartbeat_interval = 1s
heartbeat_timeout = 5s
lease = 30s
restart_delay = 100ms
restart_delay_max = 500ms
max_restarts = 2
restart_window = 5m
EOF2
# 40 fds: the cap is 10 HTTP connections, and 8 workers cannot all start.
(ulimit -n 40 && exec "$PGWAKE" run -c "$T/pgwake.conf" -d "$TEST_DSN") >>"$T/daemon.log" 2>&1 &
DAEMON_PID=$!
DAEMON_PIDS="$DAEMON_PIDS $DAEMON_PID"
wait_for_log ' ready: ' 20 || fail "daemon not ready"
cpu0=$(awk '{print $14 + $15}' /proc/$DAEMON_PID/stat)

note "2000 idle connections held for 8 s while 16 tasks are queued"
$PY "$ROOT/tests/lib/slowloris.py" --port "$PORT" --count 2000 --seconds 8 --out "$T/loris.out" &
LORIS=$!
DAEMON_PIDS="$DAEMON_PIDS $LORIS"
sleep 2
for i in $(seq 16); do
    "$PGWAKE" enqueue -d "$TEST_DSN" a '{"sleep_ms": 200}' >/dev/null || fail "enqueue $i"
done
wait_sql "SELECT count(*) = 16 FROM pgwake.tasks WHERE stage = 'a' AND status = 'done'" 60 \
    || fail "tasks not done under load: $(q "SELECT status, count(*) FROM pgwake.tasks GROUP BY 1")"
wait $LORIS
[ "$(cat "$T/loris.out")" -ge 5 ] || fail "the idle clients never connected ($(cat "$T/loris.out"))"
grep -q 'connections open, the most allowed' "$T/daemon.log" || fail "the connection cap was never reached"
[ "$(q "SELECT count(*) FROM pgwake.stage_state WHERE host = 'load-1' AND state = 'fatal'")" = 0 ] \
    || fail "the stage went FATAL: $(q "SELECT reason FROM pgwake.stage_state WHERE host = 'load-1'")"
grep -q 'FATAL' "$T/daemon.log" && fail "FATAL in the log"
cpu1=$(awk '{print $14 + $15}' /proc/$DAEMON_PID/stat)
ticks=$((cpu1 - cpu0))
note "daemon CPU over the load: $ticks ticks ($(getconf CLK_TCK)/s)"
[ "$ticks" -lt $(( $(getconf CLK_TCK) * 5 )) ] || fail "the loop spun: $ticks ticks of CPU"
wait_for "curl -sf --noproxy '*' --max-time 2 -o /dev/null http://127.0.0.1:$PORT/healthz" 15 \
    || fail "/healthz does not answer after the clients left"
curl -s --noproxy '*' --max-time 5 "http://127.0.0.1:$PORT/metrics" >"$T/metrics"
grep -Eq '^pgwake_http_accept_pauses_total\{reason="cap"\} [1-9]' "$T/metrics" \
    || fail "cap pauses not in /metrics: $(grep http_ "$T/metrics")"
stop_daemon
[ "$RC" = 0 ] || fail "daemon exit code $RC"

note "EMFILE on accept: 16 fds, 50 idle clients"
PORT2=$(free_port)
sed "s/^http_listen = .*/http_listen = 127.0.0.1:$PORT2/; s/^host = .*/host = load-2/" "$T/pgwake.conf" \
    | write_conf tight.conf
(ulimit -n 16 && exec "$PGWAKE" run -c "$T/tight.conf" -d "$TEST_DSN") >>"$T/daemon2.log" 2>&1 &
DAEMON_PID=$!
DAEMON_PIDS="$DAEMON_PIDS $DAEMON_PID"
wait_for_log ' ready: ' 20 "$T/daemon2.log" || fail "daemon 2 not ready"
cpu0=$(awk '{print $14 + $15}' /proc/$DAEMON_PID/stat)
$PY "$ROOT/tests/lib/slowloris.py" --port "$PORT2" --count 50 --seconds 6 --out "$T/loris2.out"
ticks=$(( $(awk '{print $14 + $15}' /proc/$DAEMON_PID/stat) - cpu0 ))
note "daemon CPU while accept met EMFILE: $ticks ticks"
grep -q 'unable to accept a connection: Too many open files' "$T/daemon2.log" \
    || fail "accept never met EMFILE (the test did not provoke it)"
[ "$ticks" -lt $(( $(getconf CLK_TCK) * 3 )) ] || fail "the loop spun on EMFILE: $ticks ticks"
wait_for "curl -sf --noproxy '*' --max-time 2 -o '$T/metrics2' http://127.0.0.1:$PORT2/metrics" 15 \
    || fail "no answer after the EMFILE clients left"
grep -Eq '^pgwake_http_accept_pauses_total\{reason="error"\} [1-9]' "$T/metrics2" \
    || fail "accept-error pauses not in /metrics: $(grep http_ "$T/metrics2")"
stop_daemon
[ "$RC" = 0 ] || fail "daemon 2 exit code $RC"
echo ok
