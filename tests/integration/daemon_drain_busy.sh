#!/bin/sh
# daemon_drain_busy: a worker that ignores the wake fd (drain mode: plain-SQL
# and shell workers) and whose first claim found a long task never reports I.
# It must not count as "starting" for ever: a second task of its stage gets a
# second worker while the first is still busy.
. "$ROOT/tests/lib/itest.sh"

write_conf pgwake.conf <<EOF2
[pgwake]
host = drain-1
log_dir = $T/logs
recount_interval = 0

[stage:alpha]
command = $TESTWORKER --drain
max_workers = 3
heartbeat_interval = 1s
heartbeat_timeout = 5s
lease = 60s
EOF2

start_ready pgwake.conf
long=$("$PGWAKE" enqueue -d "$TEST_DSN" alpha '{"sleep_ms": 20000}') || fail "enqueue failed"
wait_sql "SELECT status = 'leased' FROM pgwake.tasks WHERE id = $long" 10 || fail "long task $long not claimed"
sleep 3  # past the starting grace: the first worker is busy
short=$("$PGWAKE" enqueue -d "$TEST_DSN" alpha '{"sleep_ms": 10}') || fail "enqueue failed"
wait_sql "SELECT status = 'done' FROM pgwake.tasks WHERE id = $short" 10 \
    || fail "task $short waited behind a busy drain-mode worker"
[ "$(q "SELECT status FROM pgwake.tasks WHERE id = $long")" = leased ] || fail "the long task is not still running"
[ "$(q "SELECT count(*) FROM pgwake.workers WHERE stage = 'alpha'")" = 2 ] || fail "not exactly 2 workers"
note "a second worker served the second task while the first was busy"
stop_daemon
[ "$RC" = 0 ] || fail "daemon exit $RC"
