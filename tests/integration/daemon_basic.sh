#!/bin/sh
# daemon_basic: work appearing with no worker running gets a freshly spawned
# worker (enqueue, and INSERT INTO pgwake.runs alone); a silent insert
# (session_replication_role = replica) is picked up after a manual NOTIFY
# pgwake_wake; idle workers scale to zero; SIGTERM exits 0 with no lease left.
. "$ROOT/tests/lib/itest.sh"

write_conf pgwake.conf <<EOF2
[pgwake]
host = basic-1
log_dir = $T/logs
recount_interval = 0

[stage:alpha]
command = $TESTWORKER
max_workers = 2
idle_timeout = 1500ms
heartbeat_interval = 1s
heartbeat_timeout = 5s
lease = 30s
EOF2

start_ready pgwake.conf
[ "$(q "SELECT count(*) FROM pgwake.workers")" = 0 ] || fail "a worker started without work"

note "enqueue with no worker running"
id=$("$PGWAKE" enqueue -d "$TEST_DSN" alpha '{"sleep_ms": 10}') || fail "enqueue failed"
wait_sql "SELECT status = 'done' FROM pgwake.tasks WHERE id = $id" 10 || fail "task $id not done"
[ "$(q "SELECT count(*) >= 1 FROM pgwake.workers WHERE stage = 'alpha'")" = t ] || fail "no worker registered"

note "INSERT INTO pgwake.runs alone"
run=$(q "INSERT INTO pgwake.runs(stage, params) VALUES ('alpha', '{\"sleep_ms\": 5}') RETURNING id")
wait_sql "SELECT state = 'done' FROM pgwake.v_runs WHERE id = $run" 10 || fail "run $run not done"

note "scale to zero after idle_timeout"
wait_sql "SELECT count(*) = 0 FROM pgwake.workers WHERE state IN ('starting', 'alive')" 15 \
    || fail "workers still alive after idle_timeout"
[ "$(q "SELECT count(*) FROM pgwake.workers WHERE state = 'dead'")" = 0 ] || fail "a worker died"
grep -q 'stopping (idle timeout)' "$T/daemon.log" || fail "no idle-timeout stop logged"

note "a silent insert waits for a manual NOTIFY pgwake_wake"
sid=$(psql -X -qAt -d "$TEST_DSN" -c "SET session_replication_role = replica" \
      -c "INSERT INTO pgwake.tasks(stage, payload) VALUES ('alpha', '{}') RETURNING id" | tail -1)
sleep 1
[ "$(q "SELECT status FROM pgwake.tasks WHERE id = $sid")" = pending ] || fail "silent task claimed without a wake"
psql -X -q -d "$TEST_DSN" -c "NOTIFY pgwake_wake, 'alpha'"
wait_sql "SELECT status = 'done' FROM pgwake.tasks WHERE id = $sid" 10 || fail "task $sid not done after the wake"

note "malformed and foreign notifications are survived"
psql -X -q -d "$TEST_DSN" -c "NOTIFY pgwake_task, 'Bad Stage!'" -c "NOTIFY pgwake_run, 'alpha x'" \
    -c "NOTIFY pgwake_task, 'not_served_here'"
id=$("$PGWAKE" enqueue -d "$TEST_DSN" alpha '{}')
wait_sql "SELECT status = 'done' FROM pgwake.tasks WHERE id = $id" 10 || fail "task after bad payloads not done"
grep -q 'unparseable notification on pgwake_task: "Bad Stage!"' "$T/daemon.log" || fail "bad payload not logged"

note "SIGTERM"
stop_daemon
[ "$RC" = 0 ] || fail "daemon exit code $RC"
[ "$(q "SELECT count(*) FROM pgwake.tasks WHERE status = 'leased'")" = 0 ] || fail "a lease left behind"
[ "$(q "SELECT count(*) FROM pgwake.workers WHERE state IN ('starting', 'alive')")" = 0 ] || fail "live worker rows left"
echo "ok"
