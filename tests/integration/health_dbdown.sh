#!/bin/sh
# health_dbdown: the database down for longer than heartbeat_timeout and back:
# no worker declared dead by that alone, no stage FATAL, exactly one
# "unreachable" alert and one "reachable again" alert.
. "$ROOT/tests/lib/itest.sh"
. "$ROOT/tests/lib/pgtmp.sh"
[ -n "${PGTMP_DIR:-}" ] || { echo "needs the private cluster (not PGWAKE_TEST_DSN)"; exit 77; }
start_smtp_sink

write_conf pgwake.conf <<EOF2
[pgwake]
host = dbdown-1
log_dir = $T/logs
recount_interval = 0

[alerts]
email_to = ops@example.com
smtp_url = smtp://127.0.0.1:$SMTP_PORT
db_down_alert = 1s
min_interval = 1s

[stage:alpha]
command = $TESTWORKER
min_workers = 2
max_workers = 2
heartbeat_interval = 500ms
heartbeat_timeout = 2s
lease = 30s
restart_delay = 100ms
max_restarts = 2
EOF2

start_ready pgwake.conf
wait_sql "SELECT count(*) = 2 FROM pgwake.workers WHERE state = 'alive'" 20 || fail "workers not alive"
note "PostgreSQL down for 5 s"
pgtmp_pgctl -m fast -w stop >/dev/null || fail "stop failed"
sleep 5
pgtmp_pgctl -w start >/dev/null || fail "start failed"
wait_for_log 'database back' 20 || fail "daemon did not reconnect"
sleep 4   # past heartbeat_timeout after the return: any wrong verdict would have come
[ "$(q "SELECT count(*) FROM pgwake.workers WHERE state = 'dead'")" = 0 ] \
    || fail "workers declared dead: $(q "SELECT string_agg(id || ' ' || reason, ', ') FROM pgwake.workers WHERE state = 'dead'")"
[ "$(q "SELECT count(*) FROM pgwake.stage_state WHERE state <> 'running'")" = 0 ] || fail "a stage went FATAL"
id=$("$PGWAKE" enqueue -d "$TEST_DSN" alpha '{}')
wait_sql "SELECT status = 'done' FROM pgwake.tasks WHERE id = $id" 10 || fail "no work done after the outage"
wait_for "[ \$(mail_count 'reachable again') -ge 1 ]" 10 || fail "no recovery alert"
[ "$(mail_count 'Database unreachable')" = 1 ] || fail "$(mail_count 'Database unreachable') down alerts"
[ "$(mail_count 'reachable again')" = 1 ] || fail "$(mail_count 'reachable again') recovery alerts"
stop_daemon
[ "$RC" = 0 ] || fail "daemon exit code $RC"
echo ok
