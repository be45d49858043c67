#!/bin/sh
# daemon_reload_stop: SIGHUP changing one stage's max_workers leaves every
# worker untouched (same pids); a bad new file keeps the old configuration
# running; a changed command restarts only that stage's workers, one at a
# time; SIGTERM ends everything within stop_timeout + kill_timeout + 1 s,
# exit 0, with no lease left (the interrupted task refunded).
. "$ROOT/tests/lib/itest.sh"

conf() {  # conf B_MAX A_EXTRA_ARG
    write_conf pgwake.conf <<EOF2
[pgwake]
host = reload-1
log_dir = $T/logs
recount_interval = 0

[stage:a]
command = $TESTWORKER $2
min_workers = 2
max_workers = 2
idle_timeout = 1h
heartbeat_interval = 1s
heartbeat_timeout = 5s
lease = 30s
stop_timeout = 1s
kill_timeout = 1s

[stage:b]
command = $TESTWORKER
min_workers = 1
max_workers = $1
idle_timeout = 1h
heartbeat_interval = 1s
heartbeat_timeout = 5s
lease = 30s
stop_timeout = 1s
kill_timeout = 1s
EOF2
}
pids() { q "SELECT string_agg(pid::text, ' ' ORDER BY pid) FROM pgwake.workers WHERE stage = '$1' AND state IN ('starting', 'alive')"; }

conf 2 ""
start_ready pgwake.conf
wait_sql "SELECT count(*) = 3 FROM pgwake.workers WHERE state = 'alive' AND pid IS NOT NULL" 20 \
    || fail "min_workers not started"
a0=$(pids a); b0=$(pids b)
note "a: $a0  b: $b0"

note "SIGHUP: b's max_workers 2 -> 3"
conf 3 ""
kill -HUP "$DAEMON_PID"
wait_for_log 'configuration reloaded' 10 || fail "reload not logged"
sleep 0.5
[ "$(pids a)" = "$a0" ] || fail "stage a's workers changed: $(pids a)"
[ "$(pids b)" = "$b0" ] || fail "stage b's workers changed: $(pids b)"

note "SIGHUP with a bad file"
printf '[pgwake]\nhost = reload-1\nhttp_listen = 127.0.0.1:1\nbogus_key = 1\n' | write_conf pgwake.conf
kill -HUP "$DAEMON_PID"
wait_for_log 'reload failed, keeping the running configuration: .*pgwake.conf:4: \[pgwake\] bogus_key' 10 \
    || fail "bad reload not reported with file, line and key"
id=$("$PGWAKE" enqueue -d "$TEST_DSN" b '{}')
wait_sql "SELECT status = 'done' FROM pgwake.tasks WHERE id = $id" 10 || fail "old configuration stopped working"
[ "$(pids a)" = "$a0" ] || fail "stage a's workers changed after a bad reload"

note "SIGHUP changing a's command: a restarts one at a time, b untouched"
conf 3 "-v"
kill -HUP "$DAEMON_PID"
wait_for "[ \"\$(q \"SELECT count(*) FROM pgwake.workers WHERE stage = 'a' AND state = 'alive' AND pid IS NOT NULL AND pid NOT IN ($(echo "$a0" | tr ' ' ','))\")\" = 2 ]" 20 \
    || fail "stage a not restarted: $(pids a)"
[ "$(pids b)" = "$b0" ] || fail "stage b's workers changed: $(pids b)"
# One at a time: the second old worker was stopped only after the first had exited.
stops=$(grep -c 'stopping (rolling restart)' "$T/daemon.log")
[ "$stops" = 2 ] || fail "$stops rolling stops"
awk '/stopping \(rolling restart\)/ {s++} /exited/ && s > 0 {e++} /stopping \(rolling restart\)/ && s == 2 && e < 1 {bad=1} END {exit bad}' "$T/daemon.log" \
    || fail "rolling restart stopped two workers at once"

note "SIGTERM with a busy worker"
id=$("$PGWAKE" enqueue -d "$TEST_DSN" a '{"sleep_ms": 60000}')
wait_sql "SELECT status = 'leased' FROM pgwake.tasks WHERE id = $id" 10 || fail "long task not claimed"
t0=$(date +%s%N)
stop_daemon
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
note "stopped in $ms ms (bound: 3000)"
[ "$RC" = 0 ] || fail "daemon exit code $RC"
[ "$ms" -le 3000 ] || fail "stop took $ms ms"
[ "$(q "SELECT count(*) FROM pgwake.tasks WHERE status = 'leased'")" = 0 ] || fail "a lease left behind"
[ "$(q "SELECT status || ' ' || attempts FROM pgwake.tasks WHERE id = $id")" = "pending 0" ] \
    || fail "interrupted task not refunded: $(q "SELECT status || ' ' || attempts FROM pgwake.tasks WHERE id = $id")"
[ "$(stage_procs a)$(stage_procs b)" = 00 ] || fail "worker processes left"
echo ok
