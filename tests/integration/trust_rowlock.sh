#!/bin/sh
# trust_rowlock: one session holds a busy task's row lock (SELECT ... FOR
# UPDATE in an open transaction) and that task's worker is SIGKILLed: the
# release waits on the lock. It is bounded (lock_timeout) and retried with
# backoff on the maintenance connection, shown in /status while pending,
# and never holds up another stage: a task of a stage with no worker alive
# is done within seconds. Once the lock goes, the locked task is done once.
. "$ROOT/tests/lib/itest.sh"

write_conf pgwake.conf <<EOF2
[pgwake]
host = rowlock-1
log_dir = $T/logs
recount_interval = 0

[stage:alpha]
command = $TESTWORKER
max_workers = 1
restart_delay = 100ms

[stage:beta]
command = $TESTWORKER
max_workers = 1
EOF2
port=$(cat "$T/.port.pgwake.conf")

start_ready pgwake.conf
id=$("$PGWAKE" enqueue -d "$TEST_DSN" alpha '{"hang": true, "crash_attempts": 1}')
wait_for "grep -q '^claim $id ' '$TESTWORKER_LOG'" 10 || fail "task not claimed"
line=$(grep "^claim $id " "$TESTWORKER_LOG" | head -1)
wid=$(echo "$line" | awk '{print $5}'); pid=$(echo "$line" | awk '{print $6}')

# A session holding the task's row lock, as an application transaction would.
mkfifo "$T/lock.fifo"
psql -X -qAt -d "$TEST_DSN" <"$T/lock.fifo" >"$T/lock.out" 2>&1 &
DAEMON_PIDS="$DAEMON_PIDS $!"
exec 3>"$T/lock.fifo"
echo "BEGIN; SELECT 'locked', id FROM pgwake.tasks WHERE id = $id FOR UPDATE;" >&3
wait_for "grep -q '^locked|$id' '$T/lock.out'" 10 || fail "lock not taken: $(cat "$T/lock.out")"
note "task $id locked by another session; killing its worker $wid (pid $pid)"
kill -KILL "$pid"
wait_sql "SELECT count(*) > 0 FROM pg_catalog.pg_stat_activity WHERE application_name = 'pgwake'
           AND datname = pg_catalog.current_database() AND wait_event_type = 'Lock'" 15 \
    || fail "the release never waited on the lock"

[ "$(stage_procs beta)" = 0 ] || fail "stage beta already has a worker"
t0=$(date +%s%N)
b=$("$PGWAKE" enqueue -d "$TEST_DSN" beta '{}')
wait_sql "SELECT status = 'done' FROM pgwake.tasks WHERE id = $b" 30 || fail "stage beta stalled behind the lock"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
note "task of stage beta done in $ms ms while the release waits (aim 1 s, ceiling 10 s)"
[ "$ms" -le 10000 ] || fail "stage beta took $ms ms"
wait_for_log "unable to release worker $wid: .*lock timeout" 15 || fail "release not bounded by lock_timeout"

curl -sf "http://127.0.0.1:$port/status" >"$T/status.json" || fail "no /status"
grep -q "release worker $wid" "$T/status.json" || fail "pending release not in /status: $(cat "$T/status.json")"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/healthz")
[ "$code" = 200 ] || fail "/healthz $code while a release retries"
[ "$(q "SELECT status FROM pgwake.tasks WHERE id = $id")" = leased ] || fail "locked task changed under the lock"

echo "COMMIT;" >&3
exec 3>&-
wait_sql "SELECT status = 'done' FROM pgwake.tasks WHERE id = $id" 30 || fail "locked task not done after the lock went"
oks=$(awk -v id="$id" '$1 == "complete" && $2 == id && $4 == "ok"' "$TESTWORKER_LOG" | wc -l)
[ "$oks" = 1 ] || fail "task completed $oks times"
[ "$(q "SELECT attempts FROM pgwake.tasks WHERE id = $id")" = 2 ] || fail "attempts not 2"
stop_daemon
[ "$RC" = 0 ] || fail "daemon exit code $RC"
echo ok
