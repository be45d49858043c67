#!/bin/sh
# trust_forged_notify: any role that can connect may NOTIFY. A forged
# `pgwake_heartbeat, '<id> dead'` or '<id> exited' about a live, busy worker
# leads to a fresh read of its row, which says alive: the worker keeps
# running and its task is done once, at attempt 1; the refuted hints are
# counted. A real declaration (release_worker by someone with the right to)
# still stops the worker.
. "$ROOT/tests/lib/itest.sh"

write_conf pgwake.conf <<EOF2
[pgwake]
host = forged-1
log_dir = $T/logs
recount_interval = 0

[stage:alpha]
command = $TESTWORKER
max_workers = 1
EOF2
port=$(cat "$T/.port.pgwake.conf")

start_ready pgwake.conf
id=$("$PGWAKE" enqueue -d "$TEST_DSN" alpha '{"sleep_ms": 3000}')
wait_for "grep -q '^claim $id ' '$TESTWORKER_LOG'" 10 || fail "task not claimed"
line=$(grep "^claim $id " "$TESTWORKER_LOG" | head -1)
wid=$(echo "$line" | awk '{print $5}'); pid=$(echo "$line" | awk '{print $6}')
q "NOTIFY pgwake_heartbeat, '$wid dead'"
q "NOTIFY pgwake_heartbeat, '$wid exited'"
wait_for_log "$wid.*its row says alive: hint ignored" 10 || fail "forged hint not refuted"
kill -0 "$pid" || fail "worker $pid killed by a forged notification"
wait_sql "SELECT status = 'done' FROM pgwake.tasks WHERE id = $id" 20 || fail "task not done"
oks=$(awk -v id="$id" '$1 == "complete" && $2 == id && $4 == "ok"' "$TESTWORKER_LOG" | wc -l)
[ "$oks" = 1 ] || fail "task completed $oks times"
[ "$(q "SELECT attempts FROM pgwake.tasks WHERE id = $id")" = 1 ] || fail "attempts not 1"
[ "$(q "SELECT state FROM pgwake.workers WHERE id = '$wid'")" = alive ] || fail "worker row changed"
kill -0 "$pid" || fail "worker $pid gone"
n=$(curl -sf "http://127.0.0.1:$port/metrics" | awk '$1 == "pgwake_worker_hints_refuted_total" {print $2}')
[ "${n:-0}" -ge 1 ] || fail "refuted hints not counted ($n)"

# A real verdict in the row: the worker is stopped.
q "SELECT * FROM pgwake.release_worker('$wid', 'declared by the operator')" >/dev/null
wait_for "! kill -0 $pid" 10 || fail "worker declared dead in its row still runs"
wait_for_log "$wid.*declared dead in the database" 5 || fail "no declared-dead line"
stop_daemon
[ "$RC" = 0 ] || fail "daemon exit code $RC"
echo ok
