#!/bin/sh
# trust_pending_tx: a stage's pending_sql runs on the daemon's own session. One
# that leaves the session inside a transaction (`BEGIN`) would keep every
# later statement of the daemon uncommitted: it is rolled back at once and
# named in the log, and the other stages' work is done and committed.
. "$ROOT/tests/lib/itest.sh"

write_conf pgwake.conf <<EOF2
[pgwake]
host = pendtx-1
log_dir = $T/logs
recount_interval = 0

[stage:odd]
command = $TESTWORKER
pending_sql = BEGIN

[stage:alpha]
command = $TESTWORKER
EOF2

start_ready pgwake.conf
wait_for_log 'query "BEGIN" left the session inside a transaction: rolled back' 10 \
    || fail "open transaction not rolled back"
wait_for_log 'odd: unable to count pending work \(pending_sql\)' 5 || fail "pending_sql failure not named"
id=$("$PGWAKE" enqueue -d "$TEST_DSN" alpha '{}')
wait_sql "SELECT status = 'done' FROM pgwake.tasks WHERE id = $id" 20 || fail "task not done"
# The daemon's own writes were committed: its stage states are visible.
[ "$(q "SELECT count(*) FROM pgwake.stage_state WHERE host = 'pendtx-1'")" = 2 ] || fail "stage states not committed"
wait_sql "SELECT count(*) = 0 FROM pg_catalog.pg_stat_activity WHERE application_name = 'pgwake'
           AND datname = pg_catalog.current_database() AND state LIKE 'idle in transaction%'" 10 \
    || fail "a daemon session stays inside a transaction"
stop_daemon
[ "$RC" = 0 ] || fail "daemon exit code $RC"
echo ok
