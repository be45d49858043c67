#!/bin/sh
# release_sql_failing: a release_sql that fails at run time never blocks the
# end of the worker nor anything else: the worker is recorded dead, the failure
# is logged with its SQLSTATE and shown in /status, a task of another stage is
# done meanwhile, and the retry releases the lease once the statement works; a
# row lock held by another session delays the worker's end by at most 1 s.
. "$ROOT/tests/lib/itest.sh"

q "CREATE SCHEMA pm" >/dev/null
q "CREATE TABLE pm.cand (id int PRIMARY KEY, stage text NOT NULL, status text NOT NULL DEFAULT 'pending',
                         worker_id text, releases int NOT NULL DEFAULT 0, done_by text)"
q "SELECT pgwake.watch_table('pm.cand', 'broken')" >/dev/null
write_conf pgwake.conf <<EOF2
[pgwake]
host = rsql-fail
log_dir = $T/logs

[stage:broken]
command = $ROOT/tests/lib/lease_worker.sh sleep
max_workers = 1
restart_delay = 100ms
max_restarts = 0
pending_sql = SELECT count(*) FROM pm.cand WHERE stage = 'broken' AND status = 'pending'
release_sql = UPDATE pm.cand SET status = 'pending', worker_id = NULL, releases = releases + 1
    WHERE worker_id = \$1 AND status = 'leased'

[stage:other]
command = $TESTWORKER
max_workers = 1
EOF2
port=$(sed -n 's/^http_listen = 127.0.0.1://p' "$T/pgwake.conf")
start_ready pgwake.conf

q "INSERT INTO pm.cand (id, stage) VALUES (1, 'broken')" >/dev/null
wait_sql "SELECT status = 'leased' FROM pm.cand WHERE id = 1" 10 || fail "row 1 never leased"
first=$(q "SELECT worker_id FROM pm.cand WHERE id = 1")
note "the statement breaks (its column renamed), then worker $first is killed"
q "ALTER TABLE pm.cand RENAME COLUMN releases TO n_releases" >/dev/null
kill -KILL "$(q "SELECT pid FROM pgwake.workers WHERE id = '$first'")"
wait_sql "SELECT state = 'dead' FROM pgwake.workers WHERE id = '$first'" 5 || fail "worker end not recorded"
wait_for_log "broken: release_sql for worker $first failed \\(SQLSTATE 42703\\)" 5 || fail "failure not logged"
[ "$(q "SELECT status FROM pm.cand WHERE id = 1")" = leased ] || fail "row released by a broken statement?"

note "another stage is unaffected"
tid=$(q "SELECT pgwake.enqueue('other', '{}')")
wait_sql "SELECT status = 'done' FROM pgwake.tasks WHERE id = $tid" 10 || fail "other stage's task not done"

note "/status shows the failure"
curl -s --noproxy '*' --max-time 10 "http://127.0.0.1:$port/status" >"$T/status.json" || fail "no /status"
/usr/bin/python3 - "$T/status.json" "$first" <<'EOF2' || fail "/status: $(cat "$T/status.json")"
import json, sys
st = json.load(open(sys.argv[1]))
broken = [s for s in st["stages"] if s["name"] == "broken"][0]
f = broken["release_failures"]
assert len(f) == 1 and f[0]["worker_id"] == sys.argv[2] and f[0]["sqlstate"] == "42703", f
assert "does not exist" in f[0]["message"] and f[0]["attempts"] >= 1, f
assert "release_failures" not in [s for s in st["stages"] if s["name"] == "other"][0]
EOF2
"$PGWAKE" status -c "$T/pgwake.conf" >"$T/status.txt" 2>&1
grep -q "release_sql failing for $first (SQLSTATE 42703, attempt [0-9]*): column" "$T/status.txt" \
    || fail "pgwake status does not show the failure: $(cat "$T/status.txt")"
curl -s --noproxy '*' --max-time 10 "http://127.0.0.1:$port/metrics" | grep -qx 'pgwake_release_sql_failing{stage="broken"} 1' \
    || fail "/metrics does not count the failure"

note "fixed: the retry releases the lease, the row is done once"
q "ALTER TABLE pm.cand RENAME COLUMN n_releases TO releases" >/dev/null
wait_for_log "broken: release_sql for worker $first done on retry" 20 || fail "retry not logged"
wait_sql "SELECT status = 'done' AND releases = 1 AND done_by <> '$first' FROM pm.cand WHERE id = 1" 10 \
    || fail "row 1 not done after the retry"
[ "$(q "SELECT count(*) FROM pgwake.release_failures")" = 0 ] || fail "failure row left"
curl -s --noproxy '*' --max-time 10 "http://127.0.0.1:$port/status" | grep -q '"release_failures": \[\]' \
    || fail "/status still shows the failure"

note "a row lock held elsewhere: the release waits at most 1 s (55P03), the end is recorded, the retry frees it"
q "INSERT INTO pm.cand (id, stage) VALUES (2, 'broken')" >/dev/null
wait_sql "SELECT status = 'leased' FROM pm.cand WHERE id = 2" 10 || fail "row 2 never leased"
second=$(q "SELECT worker_id FROM pm.cand WHERE id = 2")
psql -X -q -d "$TEST_DSN" -c "BEGIN" -c "SELECT 1 FROM pm.cand WHERE id = 2 FOR UPDATE" \
    -c "SELECT pg_sleep(4)" -c "COMMIT" >/dev/null 2>&1 &
locker=$!
wait_sql "SELECT count(*) = 1 FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
          WHERE c.relname = 'cand' AND l.mode = 'RowShareLock' AND l.pid <> pg_backend_pid()" 5 \
    || fail "the row lock was not taken"
t0=$(date +%s%N)
kill -KILL "$(q "SELECT pid FROM pgwake.workers WHERE id = '$second'")"
wait_sql "SELECT state = 'dead' FROM pgwake.workers WHERE id = '$second'" 5 || fail "locked: worker end not recorded"
note "the end of $second recorded $(( ($(date +%s%N) - t0) / 1000000 )) ms after the SIGKILL"
wait_for_log "broken: release_sql for worker $second failed \\(SQLSTATE 55P03\\)" 5 || fail "lock timeout not logged"
wait "$locker"
wait_sql "SELECT status = 'done' AND releases = 1 FROM pm.cand WHERE id = 2" 20 || fail "row 2 not done after the lock went"
stop_daemon
[ "$RC" = 0 ] || fail "daemon exit code $RC"
echo ok
