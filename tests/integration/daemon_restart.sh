#!/bin/sh
# daemon_restart: the daemon SIGKILLed mid-run and started again: its old
# workers are gone, nothing is lost, nothing completed twice. A second daemon
# with the same host refuses to start (exit 1) and says why.
. "$ROOT/tests/lib/itest.sh"

conf() {
    write_conf "$1" <<EOF2
[pgwake]
host = restart-1
log_dir = $T/logs
recount_interval = 0

[stage:alpha]
command = $TESTWORKER
max_workers = 3
idle_timeout = 30s
heartbeat_interval = 1s
heartbeat_timeout = 5s
lease = 30s
EOF2
}
conf one.conf
conf two.conf

start_ready one.conf
q "INSERT INTO pgwake.tasks(stage, payload) SELECT 'alpha', '{\"sleep_ms\": 30}' FROM generate_series(1, 200)" >/dev/null
wait_sql "SELECT count(*) >= 20 FROM pgwake.tasks WHERE status = 'done'" 20 || fail "no progress"

note "a second daemon with the same host"
"$PGWAKE" run -c "$T/two.conf" -d "$TEST_DSN" >"$T/second.log" 2>&1
rc=$?
[ "$rc" = 1 ] || fail "second daemon exit code $rc, expected 1"
grep -q 'host restart-1 is served by a live daemon; give this one a distinct host' "$T/second.log" \
    || fail "second daemon's message: $(cat "$T/second.log")"

note "SIGKILL the daemon"
old_pids=$(q "SELECT string_agg(pid::text, ' ') FROM pgwake.workers WHERE state IN ('starting', 'alive')")
kill -KILL "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null
start_ready one.conf "$T/daemon2.log"
for p in $old_pids; do
    wait_for "! kill -0 $p" 5 || fail "old worker $p still running"
done
wait_sql "SELECT count(*) = 200 AND bool_and(status = 'done') FROM pgwake.tasks" 60 \
    || fail "not all done: $(q "SELECT string_agg(status || ' ' || n, ', ') FROM (SELECT status, count(*) n FROM pgwake.tasks GROUP BY 1) s")"
dups=$(awk '$1 == "complete" && $4 == "ok" {n[$2]++} END {d = 0; for (k in n) if (n[k] > 1) d++; print d}' "$TESTWORKER_LOG")
[ "$dups" = 0 ] || fail "$dups tasks completed more than once"
redone=$(q "SELECT count(*) FROM pgwake.tasks WHERE releases > 0")
note "re-executed after the daemon's death: $redone"
stop_daemon
[ "$RC" = 0 ] || fail "daemon exit code $RC"
[ "$(q "SELECT count(*) FROM pgwake.workers WHERE state IN ('starting', 'alive')")" = 0 ] || fail "live worker rows left"
echo ok
