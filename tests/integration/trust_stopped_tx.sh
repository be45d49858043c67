#!/bin/sh
# trust_stopped_tx: a worker SIGSTOPped inside its own transaction right after
# `complete` (its follow-ups enqueued in that transaction) holds its task's
# row lock: the release would wait for the worker, the worker for the
# release. The daemon finds it past its heartbeat deadline, stops it without
# waiting for the verdict, and the task is done exactly once (by another
# worker) with its follow-ups enqueued exactly once; meanwhile another stage
# keeps working; one "Dead Workers Detected" mail lists it.
. "$ROOT/tests/lib/itest.sh"
start_smtp_sink

write_conf pgwake.conf <<EOF2
[pgwake]
host = stoptx-1
log_dir = $T/logs
recount_interval = 0

$(smtp_alerts)

[stage:alpha]
command = $TESTWORKER
max_workers = 2
heartbeat_interval = 500ms
heartbeat_timeout = 2s
lease = 60s
kill_timeout = 1s
restart_delay = 100ms

[stage:beta]
command = $TESTWORKER
max_workers = 1
EOF2

start_ready pgwake.conf
id=$("$PGWAKE" enqueue -d "$TEST_DSN" alpha \
    '{"stop_in_tx": true, "crash_attempts": 1, "fanout": {"stage": "gamma", "count": 2}}')
wait_for "grep -q '^claim $id ' '$TESTWORKER_LOG'" 10 || fail "task not claimed"
line=$(grep "^claim $id " "$TESTWORKER_LOG" | head -1)
wid=$(echo "$line" | awk '{print $5}'); pid=$(echo "$line" | awk '{print $6}')
wait_for "grep -Eq '^State:[[:space:]]+T' /proc/$pid/status" 10 \
    || fail "worker $pid did not stop itself"
note "worker $wid (pid $pid) stopped inside its transaction"
t0=$(date +%s%N)
# Meanwhile another stage works.
b=$("$PGWAKE" enqueue -d "$TEST_DSN" beta '{}')
wait_sql "SELECT status = 'done' FROM pgwake.tasks WHERE id = $b" 20 || fail "stage beta stalled"
wait_for "! kill -0 $pid" 20 || fail "stopped worker $pid never killed"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
note "stopped worker killed after $ms ms (heartbeat_timeout 2 s)"
# The verdict skips the locked task row (0005); were the worker's own row locked,
# the daemon would stop its child first and record the verdict after the reap.
wait_for_log "$wid.*(declared dead in the database|past its heartbeat or task_timeout deadline and its rows are locked)" 5 \
    || fail "no verdict and no hung-before-verdict line"
wait_sql "SELECT status = 'done' FROM pgwake.tasks WHERE id = $id" 30 || fail "task not done after the kill"
oks=$(awk -v id="$id" '$1 == "complete" && $2 == id && $4 == "ok"' "$TESTWORKER_LOG" | wc -l)
[ "$oks" = 1 ] || fail "task completed $oks times"
[ "$(q "SELECT attempts FROM pgwake.tasks WHERE id = $id")" = 2 ] || fail "attempts: $(q "SELECT attempts FROM pgwake.tasks WHERE id = $id")"
[ "$(q "SELECT count(*) FROM pgwake.tasks WHERE stage = 'gamma'")" = 2 ] \
    || fail "follow-ups: $(q "SELECT count(*) FROM pgwake.tasks WHERE stage = 'gamma'")"
wait_sql "SELECT state = 'dead' AND reason = 'heartbeat timeout' FROM pgwake.workers WHERE id = '$wid'" 10 \
    || fail "worker row: $(q "SELECT state, reason FROM pgwake.workers WHERE id = '$wid'")"
wait_for "[ \$(mail_count '$wid') -ge 1 ]" 10 || fail "no alert mail for $wid"
sleep 1
[ "$(mail_count "$wid")" = 1 ] || fail "$(mail_count "$wid") mails list $wid"
[ "$(mail_count 'Subject: Dead Workers Detected (1)')" = 1 ] || fail "subject missing"
stop_daemon
[ "$RC" = 0 ] || fail "daemon exit code $RC"
echo ok
