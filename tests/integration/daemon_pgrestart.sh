#!/bin/sh
# daemon_pgrestart: PostgreSQL restarted with `pg_ctl restart -m immediate`
# while tasks are enqueued around the outage (the client retries while the
# server refuses connections): every task done once it returns, exactly once,
# and no stage FATAL because of the outage.
. "$ROOT/tests/lib/itest.sh"
. "$ROOT/tests/lib/pgtmp.sh"
[ -n "${PGTMP_DIR:-}" ] || { echo "needs the private cluster (not PGWAKE_TEST_DSN)"; exit 77; }

write_conf pgwake.conf <<EOF2
[pgwake]
host = pgrestart-1
log_dir = $T/logs
recount_interval = 0

[stage:alpha]
command = $TESTWORKER
max_workers = 3
idle_timeout = 30s
heartbeat_interval = 1s
heartbeat_timeout = 3s
lease = 30s
restart_delay = 100ms
max_restarts = 2
restart_window = 1m
EOF2

start_ready pgwake.conf
enqueue_retrying() {  # enqueue_retrying N: N tasks, each retried until the server accepts it
    i=0
    while [ $i -lt "$1" ]; do
        "$PGWAKE" enqueue -d "$TEST_DSN" alpha '{"sleep_ms": 20}' >/dev/null 2>&1 && i=$((i + 1)) \
            || sleep 0.1
    done
}
enqueue_retrying 30
( enqueue_retrying 40 ) &
producer=$!
sleep 0.3
note "pg_ctl restart -m immediate"
pgtmp_restart immediate || fail "restart failed"
wait $producer
enqueue_retrying 30
wait_sql "SELECT count(*) = 100 AND bool_and(status = 'done') FROM pgwake.tasks" 60 \
    || fail "not all done: $(q "SELECT string_agg(status || ' ' || n, ', ') FROM (SELECT status, count(*) n FROM pgwake.tasks GROUP BY 1) s")"
dups=$(awk '$1 == "complete" && $4 == "ok" {n[$2]++} END {d = 0; for (k in n) if (n[k] > 1) d++; print d}' "$TESTWORKER_LOG")
[ "$dups" = 0 ] || fail "$dups tasks completed more than once"
grep -q 'database back' "$T/daemon.log" || fail "the daemon did not reconnect"
[ "$(q "SELECT count(*) FROM pgwake.stage_state WHERE state <> 'running'")" = 0 ] || fail "a stage went FATAL"
grep -q 'stage is FATAL' "$T/daemon.log" && fail "a stage went FATAL"
stop_daemon
[ "$RC" = 0 ] || fail "daemon exit code $RC"
echo ok
