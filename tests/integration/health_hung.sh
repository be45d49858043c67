#!/bin/sh
# health_hung: a worker that stops heartbeating but stays alive (SIGSTOP) is
# found within heartbeat_timeout + 5 s, declared dead with its lease released
# in one statement, killed, its task completed exactly once by another worker,
# and exactly one "Dead Workers Detected" email lists it (with its last lines).
. "$ROOT/tests/lib/itest.sh"
start_smtp_sink

write_conf pgwake.conf <<EOF2
[pgwake]
host = hung-1
log_dir = $T/logs
recount_interval = 0

$(smtp_alerts)

[stage:alpha]
command = $TESTWORKER
max_workers = 2
heartbeat_interval = 500ms
heartbeat_timeout = 2s
lease = 30s
kill_timeout = 1s
restart_delay = 100ms
EOF2

start_ready pgwake.conf
id=$("$PGWAKE" enqueue -d "$TEST_DSN" alpha '{"hang": true, "crash_attempts": 1}')
wait_for "grep -q '^claim $id ' '$TESTWORKER_LOG'" 10 || fail "task not claimed"
t0=$(date +%s%N)
line=$(grep "^claim $id " "$TESTWORKER_LOG" | head -1)
wid=$(echo "$line" | awk '{print $5}'); pid=$(echo "$line" | awk '{print $6}')
note "worker $wid (pid $pid) hangs"
wait_sql "SELECT state = 'dead' FROM pgwake.workers WHERE id = '$wid'" 15 || fail "hung worker not declared dead"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
note "declared dead after $ms ms (heartbeat_timeout 2000 ms, ceiling 7000 ms)"
[ "$ms" -le 7000 ] || fail "declared dead after $ms ms"
[ "$(q "SELECT reason FROM pgwake.workers WHERE id = '$wid'")" = "heartbeat timeout" ] || fail "wrong reason"
wait_for "! kill -0 $pid" 5 || fail "hung worker $pid not killed"
wait_sql "SELECT status = 'done' FROM pgwake.tasks WHERE id = $id" 15 || fail "task not redone"
oks=$(awk -v id="$id" '$1 == "complete" && $2 == id && $4 == "ok" {print $5}' "$TESTWORKER_LOG")
[ "$(echo "$oks" | wc -l)" = 1 ] || fail "completed $(echo "$oks" | wc -l) times"
[ "$oks" != "$wid" ] || fail "completed by the hung worker"
wait_for "[ \$(mail_count '$wid') -ge 1 ]" 10 || fail "no alert mail for $wid"
sleep 2
n=$(mail_count "$wid")
[ "$n" = 1 ] || fail "$n mails list $wid"
[ "$(mail_count 'Subject: Dead Workers Detected (1)')" = 1 ] || fail "subject missing: $(cat "$T/smtp.jsonl")"
stop_daemon
[ "$RC" = 0 ] || fail "daemon exit code $RC"
echo ok
