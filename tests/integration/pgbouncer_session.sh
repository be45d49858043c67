#!/bin/sh
# pgbouncer_session: the daemon through a PgBouncer session pool serves end to
# end (tasks done, wakes through LISTEN, fan-out follow-ups) and says it is
# behind a session pool; pointed at a transaction or statement pool it refuses
# to start (exit 1) with a message naming the pool mode and what to do,
# before its first lock or setting could land in a shared server session.
. "$ROOT/tests/lib/itest.sh"
. "$ROOT/tests/lib/pgtmp.sh"
. "$ROOT/tests/lib/pgbouncer.sh"
[ -n "${PGTMP_DIR:-}" ] || { echo "needs the private cluster (not PGWAKE_TEST_DSN)"; exit 77; }
start_pgbouncer session session
start_pgbouncer txn transaction
start_pgbouncer stmt statement

write_conf pgwake.conf <<EOF2
[pgwake]
host = pgbouncer-1
log_dir = $T/logs
recount_interval = 0

[stage:a]
command = $TESTWORKER
max_workers = 3
idle_timeout = 30s
heartbeat_interval = 1s
heartbeat_timeout = 10s
lease = 30s

[stage:b]
command = $TESTWORKER
max_workers = 2
idle_timeout = 30s
heartbeat_interval = 1s
heartbeat_timeout = 10s
lease = 30s
EOF2

for mode in txn stmt; do
    note "$mode pool: refused"
    eval "dsn=\$${mode}_DSN"
    "$PGWAKE" run -c "$T/pgwake.conf" -d "$dsn" >"$T/daemon-$mode.log" 2>&1 &
    p=$!
    wait_for "! kill -0 $p" 20 || { kill -KILL $p; fail "the daemon did not refuse a $mode pool"; }
    wait $p
    rc=$?
    [ "$rc" = 1 ] || fail "exit code $rc through a $mode pool, expected 1"
    grep -q 'transaction or statement pool mode' "$T/daemon-$mode.log" || fail "no pool mode in: $(cat "$T/daemon-$mode.log")"
    grep -q 'pool_mode = session' "$T/daemon-$mode.log" || fail "no advice in: $(cat "$T/daemon-$mode.log")"
    grep -q ' ready: ' "$T/daemon-$mode.log" && fail "the daemon got ready through a $mode pool"
    [ "$(q "SELECT count(*) FROM pgwake.workers")" = 0 ] || fail "workers started through a $mode pool"
    # Refused before its first lock: none left behind in the pool's server sessions.
    [ "$(q "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")" = 0 ] \
        || fail "the refused daemon left an advisory lock in a pooled session"
done

note "session pool: serves"
"$PGWAKE" run -c "$T/pgwake.conf" -d "$session_DSN" >>"$T/daemon.log" 2>&1 &
DAEMON_PID=$!
DAEMON_PIDS="$DAEMON_PIDS $DAEMON_PID"
wait_for_log ' ready: ' 20 || fail "not ready through a session pool"
grep -q 'transaction or statement' "$T/daemon.log" && fail "a session pool was taken for a transaction pool"
grep -q 'proxy in session pool mode' "$T/daemon.log" || fail "the session pool went unnoticed"
# Each a-task fans out 2 b-tasks: 50 + 100, woken through LISTEN (no recount timer).
q "INSERT INTO pgwake.tasks(stage, payload)
   SELECT 'a', '{\"fanout\": {\"stage\": \"b\", \"count\": 2, \"payload\": {}}}' FROM generate_series(1, 50)" >/dev/null
wait_sql "SELECT count(*) = 150 AND bool_and(status = 'done') FROM pgwake.tasks" 60 \
    || fail "not all done: $(q "SELECT string_agg(stage || ' ' || status || ' ' || n, ', ') FROM (SELECT stage, status, count(*) n FROM pgwake.tasks GROUP BY 1, 2) s")"
# A later wake, with every worker idle, comes through the pool's LISTEN too.
"$PGWAKE" enqueue -d "$TEST_DSN" b '{}' >/dev/null || fail "enqueue failed"
wait_sql "SELECT count(*) = 151 AND bool_and(status = 'done') FROM pgwake.tasks" 20 || fail "a wake through the session pool was lost"
dups=$(awk '$1 == "complete" && $4 == "ok" {n[$2]++} END {d = 0; for (k in n) if (n[k] > 1) d++; print d}' "$TESTWORKER_LOG")
[ "$dups" = 0 ] || fail "$dups tasks completed more than once"
stop_daemon
[ "$RC" = 0 ] || fail "daemon exit code $RC"
echo ok
