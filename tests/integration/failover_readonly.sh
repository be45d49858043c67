#!/bin/sh
# failover_readonly: the server the daemon is connected to becomes read-only
# under it without closing its connection (as a demoted primary can): the
# daemon's next write fails with SQLSTATE 25006, and instead of staying there
# it reconnects, and its target_session_attrs=read-write DSN keeps it off the
# server (/healthz 503) until the server is writable again; then it serves,
# and the write that failed (a worker's exit) is applied after all.
. "$ROOT/tests/lib/itest.sh"
. "$ROOT/tests/lib/pgtmp.sh"
[ -n "${PGTMP_DIR:-}" ] || { echo "needs the private cluster (not PGWAKE_TEST_DSN)"; exit 77; }
ADMIN="$PGTMP_DSN dbname=postgres"
writable() {
    psql -X -qAt -d "$ADMIN" -c "ALTER SYSTEM RESET default_transaction_read_only" -c "SELECT pg_reload_conf()" >/dev/null
}
trap 'writable; itest_cleanup' EXIT

write_conf pgwake.conf <<EOF2
[pgwake]
host = readonly-1
log_dir = $T/logs
recount_interval = 0

[stage:a]
command = $TESTWORKER
max_workers = 1
idle_timeout = 2s
heartbeat_interval = 1s
heartbeat_timeout = 10s
lease = 30s
EOF2
URL="http://$(sed -n 's/^http_listen = //p' "$T/pgwake.conf")"
healthz() { curl -s -o /dev/null -w '%{http_code}' "$URL/healthz"; }
"$PGWAKE" run -c "$T/pgwake.conf" -d "$TEST_DSN target_session_attrs=read-write" >"$T/daemon.log" 2>&1 &
DAEMON_PID=$!
DAEMON_PIDS="$DAEMON_PIDS $DAEMON_PID"
wait_for_log ' ready: ' 20 || fail "not ready"
q "INSERT INTO pgwake.tasks(stage, payload) SELECT 'a', '{}' FROM generate_series(1, 5)" >/dev/null
wait_sql "SELECT count(*) = 5 AND bool_and(status = 'done') FROM pgwake.tasks" 20 || fail "tasks not done"

note "the server turns read-only; the idle worker's exit (after idle_timeout) is a write"
psql -X -qAt -d "$ADMIN" -c "ALTER SYSTEM SET default_transaction_read_only = on" -c "SELECT pg_reload_conf()" >/dev/null
wait_for_log 'database connection lost: .*read-only' 20 || fail "the daemon stayed on the read-only server"
wait_for "[ \"\$(healthz)\" = 503 ]" 5 || fail "/healthz not 503 without a writable server"
sleep 1
[ "$(q "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgwake'")" = 0 ] \
    || fail "the daemon has a session on the read-only server"
wait_for "grep -q 'session is read-only' '$T/daemon.log'" 10 || fail "no attempt refused as read-only"

note "writable again"
writable
wait_for "[ \"\$(healthz)\" = 200 ]" 20 || fail "the daemon did not come back"
wait_sql "SELECT count(*) = 1 FROM pgwake.workers WHERE state = 'exited'" 10 \
    || fail "the worker's exit was lost: $(q "SELECT string_agg(id || ' ' || state, ', ') FROM pgwake.workers")"
q "INSERT INTO pgwake.tasks(stage, payload) SELECT 'a', '{}' FROM generate_series(1, 5)" >/dev/null
wait_sql "SELECT count(*) = 10 AND bool_and(status = 'done') FROM pgwake.tasks" 20 || fail "tasks after not done"
stop_daemon
[ "$RC" = 0 ] || fail "daemon exit code $RC"
echo ok
