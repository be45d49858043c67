#!/bin/sh
# release_sql_ends: a pending_sql stage's release_sql frees the leases a worker
# holds in the user's own table whenever its registration ends: SIGKILL
# (release_worker), a missed heartbeat (the daemon's expire_worker), a normal
# exit holding a lease (worker_exited); and with no daemon at all, through the
# pg_cron backstop (pgwake.expire_leases() called as pg_cron would). Each row
# is done exactly once, by a second worker, after exactly one release.
. "$ROOT/tests/lib/itest.sh"

q "CREATE SCHEMA pm" >/dev/null
q "CREATE TABLE pm.cand (id int PRIMARY KEY, stage text NOT NULL, status text NOT NULL DEFAULT 'pending',
                         worker_id text, releases int NOT NULL DEFAULT 0, done_by text)"
q "SELECT pgwake.watch_table('pm.cand', s) FROM unnest(ARRAY['crash', 'hang', 'quit']) s" >/dev/null
W="$ROOT/tests/lib/lease_worker.sh"
stage() { # NAME MODE [extra keys]
    cat <<EOF2

[stage:$1]
command = $W $2
max_workers = 1
restart_delay = 100ms
max_restarts = 0
pending_sql = SELECT count(*) FROM pm.cand WHERE stage = '$1' AND status = 'pending'
release_sql = UPDATE pm.cand SET status = 'pending', worker_id = NULL, releases = releases + 1
    WHERE worker_id = \$1 AND status = 'leased'
EOF2
}
{
    printf '[pgwake]\nhost = rsql-1\nlog_dir = %s/logs\n' "$T"
    stage crash sleep
    stage hang sleep
    printf 'heartbeat_interval = 500ms\nheartbeat_timeout = 1s\nkill_timeout = 200ms\n'
    stage quit exit
} | write_conf pgwake.conf
start_ready pgwake.conf
[ "$(q "SELECT count(*) FROM pgwake.release_statements")" = 3 ] || fail "statements not registered"

note "SIGKILL of a worker holding a lease in pm.cand"
q "INSERT INTO pm.cand (id, stage) VALUES (1, 'crash')" >/dev/null
wait_sql "SELECT status = 'leased' FROM pm.cand WHERE id = 1" 10 || fail "crash: row 1 never leased"
first=$(q "SELECT worker_id FROM pm.cand WHERE id = 1")
pid=$(q "SELECT pid FROM pgwake.workers WHERE id = '$first'")
t0=$(date +%s%N)
kill -KILL "$pid"
wait_sql "SELECT releases = 1 FROM pm.cand WHERE id = 1" 5 || fail "crash: lease not released"
note "released $(( ($(date +%s%N) - t0) / 1000000 )) ms after the SIGKILL (polled with psql)"
wait_sql "SELECT status = 'done' AND done_by <> '$first' FROM pm.cand WHERE id = 1" 10 \
    || fail "crash: row 1 not done by a second worker"

note "a hung worker (no heartbeat): declared dead, its lease released"
q "INSERT INTO pm.cand (id, stage) VALUES (2, 'hang')" >/dev/null
wait_sql "SELECT status = 'done' FROM pm.cand WHERE id = 2" 15 || fail "hang: row 2 not done"
[ "$(q "SELECT releases FROM pm.cand WHERE id = 2")" = 1 ] || fail "hang: not released exactly once"
[ "$(q "SELECT reason FROM pgwake.workers w JOIN pm.cand c ON c.stage = w.stage
        WHERE c.id = 2 AND w.state = 'dead'")" = "heartbeat timeout" ] || fail "hang: no worker declared dead"

note "a normal exit holding a lease"
q "INSERT INTO pm.cand (id, stage) VALUES (3, 'quit')" >/dev/null
wait_sql "SELECT status = 'done' FROM pm.cand WHERE id = 3" 10 || fail "quit: row 3 not done"
[ "$(q "SELECT releases FROM pm.cand WHERE id = 3")" = 1 ] || fail "quit: not released exactly once"
[ "$(q "SELECT count(*) FROM pgwake.workers WHERE stage = 'quit' AND state = 'exited'")" -ge 1 ] \
    || fail "quit: no worker exited"
stop_daemon
[ "$RC" = 0 ] || fail "daemon exit code $RC"

note "no daemon: the pg_cron backstop (expire_leases) runs the statement"
q "UPDATE pgwake.workers SET started_at = started_at" >/dev/null
wid=$(q "SELECT pgwake.register_worker('crash', 'remote-host', NULL, '1 second')")
q "INSERT INTO pm.cand (id, stage, status, worker_id) VALUES (4, 'crash', 'leased', '$wid')" >/dev/null
sleep 1.2
q "SELECT * FROM pgwake.expire_leases()" >/dev/null
[ "$(q "SELECT status || ' ' || releases FROM pm.cand WHERE id = 4")" = "pending 1" ] \
    || fail "backstop: row 4 not released ($(q "SELECT status, releases FROM pm.cand WHERE id = 4"))"
[ "$(q "SELECT count(*) FROM pm.cand WHERE status = 'done' AND releases = 1")" = 3 ] || fail "rows not done once"
[ "$(q "SELECT count(*) FROM pgwake.release_failures")" = 0 ] || fail "unexpected release failures"
echo ok
