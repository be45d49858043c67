#!/bin/sh
# daemon_crash: a worker SIGKILLed mid-task has its task pending again or
# re-claimed within 2 s and completed exactly once; a command that exits 1 at
# once goes FATAL after max_restarts with growing backoff delays; a command
# that does not exist goes FATAL with its errno; other stages keep working.
. "$ROOT/tests/lib/itest.sh"

write_conf pgwake.conf <<EOF2
[pgwake]
host = crash-1
log_dir = $T/logs
recount_interval = 0

[stage:alpha]
command = $TESTWORKER
max_workers = 2
idle_timeout = 30s
heartbeat_interval = 1s
heartbeat_timeout = 5s
lease = 30s
restart_delay = 100ms

[stage:crashy]
command = $TESTWORKER --exit-code 1
max_workers = 1
restart_delay = 100ms
restart_delay_max = 2s
max_restarts = 4
restart_window = 1m

[stage:ghost]
command = $T/no/such/worker --flag
max_workers = 1
restart_delay = 100ms
max_restarts = 3
EOF2

start_ready pgwake.conf

note "SIGKILL mid-task"
id=$("$PGWAKE" enqueue -d "$TEST_DSN" alpha '{"sleep_ms": 1500}')
wait_for "grep -q '^claim $id ' '$TESTWORKER_LOG'" 10 || fail "task $id not claimed"
pid=$(awk -v id="$id" '$1 == "claim" && $2 == id {print $6; exit}' "$TESTWORKER_LOG")
owner=$(q "SELECT lease_owner FROM pgwake.tasks WHERE id = $id")
kill -KILL "$pid"
wait_sql "SELECT status = 'pending' OR lease_owner IS DISTINCT FROM '$owner' OR status = 'done'
            FROM pgwake.tasks WHERE id = $id" 2 || fail "task $id not released within 2 s"
wait_sql "SELECT status = 'done' FROM pgwake.tasks WHERE id = $id" 20 || fail "task $id not redone"
n=$(awk -v id="$id" '$1 == "complete" && $2 == id && $4 == "ok"' "$TESTWORKER_LOG" | wc -l)
[ "$n" = 1 ] || fail "task $id completed $n times"
[ "$(q "SELECT releases FROM pgwake.tasks WHERE id = $id")" = 1 ] || fail "re-execution not counted"
[ "$(q "SELECT reason FROM pgwake.workers WHERE id = '$owner'")" = "signal 9" ] || fail "dead reason wrong"

note "crash loop goes FATAL"
"$PGWAKE" enqueue -d "$TEST_DSN" crashy '{}' >/dev/null
wait_sql "SELECT state = 'fatal' FROM pgwake.stage_state WHERE stage = 'crashy'" 30 || fail "crashy not FATAL"
delays=$(grep 'crashy: restart backoff' "$T/daemon.log" | sed 's/.*backoff \([0-9]*\) ms/\1/' | tr '\n' ' ')
note "backoff delays: $delays"
set -- $delays
[ $# -ge 3 ] || fail "too few restarts: $delays"
first=$1; eval "last=\${$#}"
[ "$last" -gt "$first" ] || fail "backoff did not grow: $delays"
crashes=$(q "SELECT count(*) FROM pgwake.workers WHERE stage = 'crashy'")
[ "$crashes" = 4 ] || fail "crashy started $crashes workers, expected max_restarts = 4"
sleep 1
[ "$(q "SELECT count(*) FROM pgwake.workers WHERE stage = 'crashy'")" = 4 ] || fail "FATAL stage restarted"

note "missing command goes FATAL with its errno"
"$PGWAKE" enqueue -d "$TEST_DSN" ghost '{}' >/dev/null
wait_sql "SELECT state = 'fatal' FROM pgwake.stage_state WHERE stage = 'ghost'" 30 || fail "ghost not FATAL"
reason=$(q "SELECT reason FROM pgwake.stage_state WHERE stage = 'ghost'")
case "$reason" in *"No such file or directory"*) ;; *) fail "ghost reason: $reason" ;; esac
case "$(q "SELECT reason FROM pgwake.workers WHERE stage = 'ghost' LIMIT 1")" in
    *"No such file or directory"*) ;; *) fail "ghost worker reason missing the errno" ;; esac

note "other stages keep working"
id=$("$PGWAKE" enqueue -d "$TEST_DSN" alpha '{}')
wait_sql "SELECT status = 'done' FROM pgwake.tasks WHERE id = $id" 10 || fail "alpha stopped working"
stop_daemon
[ "$RC" = 0 ] || fail "daemon exit code $RC"
echo ok
