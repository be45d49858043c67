#!/bin/sh
# trust_task_timeout: a worker whose main loop is stuck while its heartbeat
# thread goes on (testworker sleep_ms) is cut off at task_timeout: declared
# dead ('task timeout'), killed, the task released with the attempt counted,
# and after max_attempts the task is dead with last_error saying so. A task
# under the limit on the same stage completes. The alert names the reason.
# Twice: as the maintenance holder (expire_leases), then with maintenance held
# elsewhere, by the daemon's own check of its workers (expire_worker).
. "$ROOT/tests/lib/itest.sh"
start_smtp_sink

conf() {  # conf TASK_TIMEOUT: (re)writes the configuration
    write_conf pgwake.conf <<EOF2
[pgwake]
host = tt-1
log_dir = $T/logs
recount_interval = 0

$(smtp_alerts)

[stage:slow]
command = $TESTWORKER
max_workers = 2
heartbeat_interval = 300ms
heartbeat_timeout = 5s
lease = 30s
task_timeout = $1
kill_timeout = 1s
restart_delay = 100ms
EOF2
}
conf 2s

start_ready pgwake.conf
stuck=$(q "SELECT pgwake.enqueue('slow', '{\"sleep_ms\": 600000}', max_attempts => 2)")
t0=$(date +%s)
wait_for "grep -q '^claim $stuck ' '$TESTWORKER_LOG'" 10 || fail "task not claimed"
pid1=$(grep "^claim $stuck " "$TESTWORKER_LOG" | head -1 | awk '{print $6}')
wid1=$(grep "^claim $stuck " "$TESTWORKER_LOG" | head -1 | awk '{print $5}')
note "worker $wid1 (pid $pid1) is stuck in task $stuck, heartbeating"
wait_sql "SELECT state = 'dead' FROM pgwake.workers WHERE id = '$wid1'" 20 || fail "stuck worker not cut off"
note "cut off after $(( $(date +%s) - t0 )) s (task_timeout 2 s)"
[ "$(q "SELECT reason FROM pgwake.workers WHERE id = '$wid1'")" = "task timeout" ] \
    || fail "reason: $(q "SELECT reason FROM pgwake.workers WHERE id = '$wid1'")"
wait_for "! kill -0 $pid1" 10 || fail "stuck worker $pid1 not killed"
# Meanwhile a quick task of the same stage is done.
quick=$(q "SELECT pgwake.enqueue('slow', '{\"sleep_ms\": 100}')")
wait_sql "SELECT status = 'done' FROM pgwake.tasks WHERE id = $quick" 20 || fail "quick task not done"
wait_sql "SELECT status = 'dead' FROM pgwake.tasks WHERE id = $stuck" 30 || fail "stuck task not dead: $(q "SELECT status || ' ' || attempts FROM pgwake.tasks WHERE id = $stuck")"
note "dead after $(( $(date +%s) - t0 )) s"
got=$(q "SELECT attempts || ' ' || releases || ' ' || (last_error LIKE '%task timeout%') FROM pgwake.tasks WHERE id = $stuck")
[ "$got" = "2 2 true" ] || fail "attempts releases timeout-error: $got ($(q "SELECT last_error FROM pgwake.tasks WHERE id = $stuck"))"
[ "$(grep -c "^claim $stuck " "$TESTWORKER_LOG")" = 2 ] || fail "claimed $(grep -c "^claim $stuck " "$TESTWORKER_LOG") times"
grep -q "^complete $stuck " "$TESTWORKER_LOG" && fail "the cut-off task was completed"
wait_for "[ \$(mail_count '$wid1') -ge 1 ]" 10 || fail "no alert mail for $wid1"
[ "$(mail_count 'task timeout')" -ge 1 ] || fail "the alert does not say task timeout"
wait_for "[ \$(q \"SELECT count(*) FROM pgwake.workers WHERE stage = 'slow' AND state = 'dead' AND reason = 'task timeout'\") = 2 ]" 5 \
    || fail "expected two task-timeout deaths"
# A reload applies task_timeout live: the running workers take it, unrestarted.
before=$(q "SELECT string_agg(id, ' ' ORDER BY id) FROM pgwake.workers WHERE stage = 'slow' AND state IN ('starting', 'alive')")
[ -n "$before" ] || fail "no live worker to reload"
conf 1h
kill -HUP "$DAEMON_PID"
wait_sql "SELECT bool_and(task_timeout = '1 hour') FROM pgwake.workers WHERE stage = 'slow' AND state IN ('starting', 'alive')" 10 \
    || fail "the reload did not reach the live workers: $(q "SELECT string_agg(id || '=' || COALESCE(task_timeout::text, 'none'), ' ') FROM pgwake.workers WHERE state IN ('starting', 'alive')")"
after=$(q "SELECT string_agg(id, ' ' ORDER BY id) FROM pgwake.workers WHERE stage = 'slow' AND state IN ('starting', 'alive')")
[ "$before" = "$after" ] || fail "the reload restarted workers: $before -> $after"
note "reload: live workers $after now have task_timeout 1h"
stop_daemon
[ "$RC" = 0 ] || fail "daemon exit code $RC"

note "maintenance held by another session: the daemon's own deadline check"
key=$(sed -n 's/^#define LOCK_KEY_MAINT "\([0-9]*\)::bigint".*/\1/p' "$ROOT/src/lockinfo.h")
[ -n "$key" ] || fail "no LOCK_KEY_MAINT in src/lockinfo.h"
psql -X -qAt -d "$TEST_DSN" -c "SELECT pg_advisory_lock($key)" -c "SELECT pg_sleep(300)" >/dev/null 2>&1 &
DAEMON_PIDS="$DAEMON_PIDS $!"
wait_sql "SELECT count(*) = 1 FROM pg_locks WHERE locktype = 'advisory' AND ((classid::bigint << 32) | objid::bigint) = $key AND granted" 10 \
    || fail "the maintenance lock is not held"
: >"$T/daemon.log"
conf 2s
start_ready pgwake.conf
grep -q 'maintenance: this daemon holds it' "$T/daemon.log" && fail "the daemon took maintenance"
stuck2=$(q "SELECT pgwake.enqueue('slow', '{\"sleep_ms\": 600000}', max_attempts => 1)")
wait_for "grep -q '^claim $stuck2 ' '$TESTWORKER_LOG'" 10 || fail "task not claimed"
t0=$(date +%s)
wait_sql "SELECT status = 'dead' FROM pgwake.tasks WHERE id = $stuck2" 30 || fail "stuck task not cut off by the daemon"
note "cut off and dead after $(( $(date +%s) - t0 )) s (task_timeout 2 s, checked by heartbeat_timeout 5 s)"
wid2=$(grep "^claim $stuck2 " "$TESTWORKER_LOG" | head -1 | awk '{print $5}')
pid2=$(grep "^claim $stuck2 " "$TESTWORKER_LOG" | head -1 | awk '{print $6}')
[ "$(q "SELECT reason FROM pgwake.workers WHERE id = '$wid2'")" = "task timeout" ] || fail "reason for $wid2"
wait_for "! kill -0 $pid2" 10 || fail "stuck worker $pid2 not killed"
stop_daemon
[ "$RC" = 0 ] || fail "daemon exit code $RC"
echo ok
