#!/bin/sh
# daemon_timers: work that becomes claimable later notifies nothing when its
# time comes; the daemon learns the next not_before from its recount and sets
# a timer. A pending_sql stage counts its own table (woken by watch_table).
. "$ROOT/tests/lib/itest.sh"

cat >"$T/lead_worker.sh" <<'EOF2'
#!/bin/sh
# Drains public.leads: a worker whose work lives in the user's own table.
while :; do
    id=$(psql -X -qAt -d "$PGWAKE_DSN" -c "UPDATE leads SET status = 'done', done_by = '$PGWAKE_WORKER_ID'
         WHERE id = (SELECT id FROM leads WHERE status = 'pending' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
         RETURNING id") || exit 1
    [ -n "$id" ] || exit 0
    echo "scored lead $id"
done
EOF2
chmod 755 "$T/lead_worker.sh"

write_conf pgwake.conf <<EOF2
[pgwake]
host = timers-1
log_dir = $T/logs
recount_interval = 0

[stage:alpha]
command = $TESTWORKER
max_workers = 1
idle_timeout = 30s

[stage:scoring]
command = $T/lead_worker.sh
max_workers = 2
pending_sql = SELECT count(*) FROM leads WHERE status = 'pending'
EOF2
q "CREATE TABLE leads (id serial PRIMARY KEY, status text NOT NULL DEFAULT 'pending', done_by text)"
q "SELECT pgwake.watch_table('leads', 'scoring')" >/dev/null

start_ready pgwake.conf
note "a task due in 2 s"
id=$(q "SELECT pgwake.enqueue('alpha', '{}', NULL, 0, now() + interval '2 seconds')")
t0=$(date +%s%N)
sleep 1
[ "$(q "SELECT status FROM pgwake.tasks WHERE id = $id")" = pending ] || fail "claimed before its not_before"
wait_sql "SELECT status = 'done' FROM pgwake.tasks WHERE id = $id" 10 || fail "due task never done"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
note "done $ms ms after the insert (due at 2000 ms)"
[ "$ms" -ge 1900 ] || fail "done too early ($ms ms)"

note "pending_sql stage woken by watch_table"
q "INSERT INTO leads (status) SELECT 'pending' FROM generate_series(1, 20)" >/dev/null
wait_sql "SELECT count(*) = 20 FROM leads WHERE status = 'done'" 20 || fail "leads not scored"
[ "$(q "SELECT count(DISTINCT done_by) >= 1 FROM leads")" = t ] || fail "no worker id recorded"
grep -q 'scored lead' "$T/logs/scoring.log" || fail "worker output not in logs/scoring.log"
stop_daemon
[ "$RC" = 0 ] || fail "daemon exit code $RC"
echo ok
