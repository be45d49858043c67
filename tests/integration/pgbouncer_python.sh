#!/bin/sh
# pgbouncer_python: Python workers (python/pgwake, psycopg 3) through a
# PgBouncer transaction pool (worker_dsn) with fewer server sessions than
# their connections: claims, heartbeats, completions and follow-ups all work,
# with no "prepared statement" errors (psycopg prepares a query on the server
# after five runs, and a transaction pool hands that to other clients).
. "$ROOT/tests/lib/itest.sh"
. "$ROOT/tests/lib/pgtmp.sh"
. "$ROOT/tests/lib/pgbouncer.sh"
[ -n "${PGTMP_DIR:-}" ] || { echo "needs the private cluster (not PGWAKE_TEST_DSN)"; exit 77; }
/usr/bin/python3 -c 'import psycopg' 2>/dev/null || { echo "python3-psycopg missing"; exit 77; }
start_pgbouncer txn transaction
sed -i 's/^default_pool_size = .*/default_pool_size = 2/' "$T/pgb-txn/pgbouncer.ini"
kill -HUP "$(cat "$T/pgb-txn/pgbouncer.pid")"

write_conf pgwake.conf <<EOF2
[pgwake]
host = pgbouncer-py
log_dir = $T/logs
recount_interval = 0
worker_dsn = $txn_DSN

[stage:p]
command = /usr/bin/python3 $ROOT/tests/python/pyworker.py
max_workers = 3
idle_timeout = 2s
heartbeat_interval = 300ms
heartbeat_timeout = 5s
lease = 30s

[stage:q]
command = /usr/bin/python3 $ROOT/tests/python/pyworker.py
max_workers = 1
idle_timeout = 2s
heartbeat_interval = 300ms
heartbeat_timeout = 5s
lease = 30s
EOF2
start_ready pgwake.conf
q "INSERT INTO pgwake.tasks(stage, payload)
   SELECT 'p', '{\"sleep_ms\": 50, \"followup\": {\"stage\": \"q\", \"payload\": {}}}' FROM generate_series(1, 40)" >/dev/null
wait_sql "SELECT count(*) = 80 AND bool_and(status = 'done') FROM pgwake.tasks" 60 \
    || fail "not all done: $(q "SELECT string_agg(stage || ' ' || status || ' ' || n, ', ') FROM (SELECT stage, status, count(*) n FROM pgwake.tasks GROUP BY 1, 2) s")"
grep -qi 'prepared statement' "$T/logs/"*.log && fail "$(grep -hi 'prepared statement' "$T/logs/"*.log | head -3)"
grep -Eq ' (ERROR|WARNING) ' "$T/logs/"*.log && fail "worker errors: $(grep -Eh ' (ERROR|WARNING) ' "$T/logs/"*.log | head -3)"
[ "$(q "SELECT count(*) FROM pgwake.workers WHERE state = 'dead'")" = 0 ] || fail "a worker was declared dead"
wait_sql "SELECT count(*) = 0 FROM pgwake.workers WHERE state IN ('starting', 'alive')" 20 || fail "workers did not exit"
stop_daemon
[ "$RC" = 0 ] || fail "daemon exit code $RC"
echo ok
