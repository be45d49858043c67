#!/bin/sh
# trust_reconnect_reread: notifications sent while the daemon is disconnected
# are lost. While it is away, one of its workers is declared dead and another
# exited (as pg_cron or another daemon would); after the reconnect the daemon,
# which holds maintenance, re-reads its own workers' rows and stops both,
# freeing their slots for new work.
. "$ROOT/tests/lib/itest.sh"

write_conf pgwake.conf <<EOF2
[pgwake]
host = reread-1
log_dir = $T/logs
recount_interval = 0

[stage:alpha]
command = $TESTWORKER
max_workers = 2
min_workers = 2
heartbeat_interval = 20s
heartbeat_timeout = 120s
stop_timeout = 500ms
kill_timeout = 500ms
EOF2

start_ready pgwake.conf
wait_for_log 'maintenance: this daemon holds it' 10 || fail "not the maintenance holder"
wait_for "[ \$(grep -c '^start ' '$TESTWORKER_LOG') -ge 2 ]" 20 || fail "min_workers not started"
a=$("$PGWAKE" enqueue -d "$TEST_DSN" alpha '{"sleep_ms": 60000}')
b=$("$PGWAKE" enqueue -d "$TEST_DSN" alpha '{"sleep_ms": 60000}')
wait_for "grep -q '^claim $a ' '$TESTWORKER_LOG' && grep -q '^claim $b ' '$TESTWORKER_LOG'" 10 \
    || fail "tasks not claimed"
wa=$(grep "^claim $a " "$TESTWORKER_LOG" | awk '{print $5}'); pa=$(grep "^claim $a " "$TESTWORKER_LOG" | awk '{print $6}')
wb=$(grep "^claim $b " "$TESTWORKER_LOG" | awk '{print $5}'); pb=$(grep "^claim $b " "$TESTWORKER_LOG" | awk '{print $6}')
[ "$wa" != "$wb" ] || fail "both tasks claimed by one worker"

# In one transaction: declare, then cut the daemon's sessions, then commit
# (before its reconnect, 100 ms later at the earliest): the notifications of
# the declarations reach no session of the daemon.
psql -X -qAt -v ON_ERROR_STOP=1 -d "$TEST_DSN" >"$T/away.out" 2>&1 <<SQL || fail "away script: $(cat "$T/away.out")"
BEGIN;
SELECT count(*) FROM pgwake.release_worker('$wa', 'declared by another daemon');
SELECT pgwake.worker_exited('$wb');
SELECT count(pg_catalog.pg_terminate_backend(pid)) FROM pg_catalog.pg_stat_activity
 WHERE application_name = 'pgwake' AND datname = pg_catalog.current_database();
SELECT pg_catalog.pg_sleep(0.03);
COMMIT;
SQL
wait_for_log 'database back: LISTEN again' 20 || fail "daemon did not reconnect"
wait_for "! kill -0 $pa 2>/dev/null" 10 || fail "worker $wa declared dead while away still runs"
wait_for "! kill -0 $pb 2>/dev/null" 10 || fail "worker $wb marked exited while away still runs"
wait_for_log "$wb.*its row says exited" 5 || fail "no re-read line for $wb"
# Their slots are free again: their released tasks are claimed by new workers.
wait_for "grep -q '^claim $a 2 ' '$TESTWORKER_LOG' && grep -q '^claim $b 2 ' '$TESTWORKER_LOG'" 20 \
    || fail "slots not freed: $(cat "$TESTWORKER_LOG")"
stop_daemon
[ "$RC" = 0 ] || fail "daemon exit code $RC"
echo ok
