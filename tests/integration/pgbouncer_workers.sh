#!/bin/sh
# pgbouncer_workers: workers reach the database through a PgBouncer
# transaction pool (worker_dsn; the daemon itself connects directly): they
# register, claim, heartbeat through tasks longer
# than heartbeat_timeout, complete with follow-ups and exit, all through
# server sessions they share; every task done once, no worker declared dead.
. "$ROOT/tests/lib/itest.sh"
. "$ROOT/tests/lib/pgtmp.sh"
. "$ROOT/tests/lib/pgbouncer.sh"
[ -n "${PGTMP_DIR:-}" ] || { echo "needs the private cluster (not PGWAKE_TEST_DSN)"; exit 77; }
start_pgbouncer txn transaction
# A pool smaller than the workers' connections (two each: tasks, heartbeats),
# so server sessions really change hands between their transactions.
sed -i 's/^default_pool_size = .*/default_pool_size = 3/' "$T/pgb-txn/pgbouncer.ini"
kill -HUP "$(cat "$T/pgb-txn/pgbouncer.pid")"

write_conf pgwake.conf <<EOF2
[pgwake]
host = pgbouncer-w
log_dir = $T/logs
recount_interval = 0
worker_dsn = $txn_DSN

[stage:a]
command = $TESTWORKER
max_workers = 4
idle_timeout = 1s
heartbeat_interval = 500ms
heartbeat_timeout = 2s
lease = 30s

[stage:b]
command = $TESTWORKER
max_workers = 3
idle_timeout = 1s
heartbeat_interval = 500ms
heartbeat_timeout = 2s
lease = 30s
EOF2

start_ready pgwake.conf
# 8 slow a-tasks (3 s: beyond heartbeat_timeout) and 40 quick ones, each
# fanning out 3 b-tasks.
q "INSERT INTO pgwake.tasks(stage, payload)
   SELECT 'a', json_build_object('sleep_ms', CASE WHEN i <= 8 THEN 3000 ELSE 0 END,
                                 'fanout', json_build_object('stage', 'b', 'count', 3, 'payload', '{}'::json))
     FROM generate_series(1, 48) i" >/dev/null
wait_sql "SELECT count(*) = 192 AND bool_and(status = 'done') FROM pgwake.tasks" 60 \
    || fail "not all done: $(q "SELECT string_agg(stage || ' ' || status || ' ' || n, ', ') FROM (SELECT stage, status, count(*) n FROM pgwake.tasks GROUP BY 1, 2) s")"
dups=$(awk '$1 == "complete" && $4 == "ok" {n[$2]++} END {d = 0; for (k in n) if (n[k] > 1) d++; print d}' "$TESTWORKER_LOG")
[ "$dups" = 0 ] || fail "$dups tasks completed more than once"
[ "$(q "SELECT count(*) FROM pgwake.workers WHERE state = 'dead'")" = 0 ] \
    || fail "workers declared dead: $(q "SELECT string_agg(id || ' ' || COALESCE(reason, ''), '; ') FROM pgwake.workers WHERE state = 'dead'")"
wait_sql "SELECT count(*) = 0 FROM pgwake.workers WHERE state IN ('starting', 'alive')" 20 \
    || fail "workers did not exit through the pool"
[ "$(q "SELECT count(*) FROM pgwake.workers WHERE state = 'exited'")" -gt 0 ] || fail "no worker exited"
# The workers really went through the pool: PostgreSQL saw pgbouncer's sessions only.
grep -q 'login attempt: db=' "$T/pgb-txn/pgbouncer.log" || fail "no client went through pgbouncer"
grep -Eq 'ERROR|WARNING' "$T/logs/a.log" "$T/logs/b.log" && fail "worker errors: $(grep -Eh 'ERROR|WARNING' "$T/logs/"*.log | head -5)"
stop_daemon
[ "$RC" = 0 ] || fail "daemon exit code $RC"
echo ok
