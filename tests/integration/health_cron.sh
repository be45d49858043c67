#!/bin/sh
# health_cron: with no daemon running at all, pg_cron alone (scheduled by
# `pgwake cron install`) declares a silent worker dead and releases its expired
# lease, and runs again a release_sql that had failed; `pgwake cron remove`
# unschedules. pg_cron 1.4 steps by the minute, so
# this takes up to about a minute.
. "$ROOT/tests/lib/itest.sh"
[ -f /usr/lib/postgresql/15/lib/pg_cron.so ] || { echo "pg_cron not installed"; exit 77; }
[ -n "${PGTMP_DIR:-}" ] || { echo "needs the private cluster (not PGWAKE_TEST_DSN)"; exit 77; }

psql -X -q -d "$PGTMP_DSN dbname=postgres" -c "CREATE EXTENSION IF NOT EXISTS pg_cron" || fail "no pg_cron"
out=$("$PGWAKE" cron install -d "$TEST_DSN") || fail "cron install failed"
note "$out"
db=$(q "SELECT current_database()")
jobs=$(psql -X -qAt -d "$PGTMP_DSN dbname=postgres" -c "SELECT count(*) FROM cron.job WHERE database = '$db'")
[ "$jobs" = 3 ] || fail "$jobs jobs scheduled, expected 3 (expire_leases, retry_releases, prune)"
"$PGWAKE" cron install -d "$TEST_DSN" >/dev/null || fail "second install failed"
jobs=$(psql -X -qAt -d "$PGTMP_DSN dbname=postgres" -c "SELECT count(*) FROM cron.job WHERE database = '$db'")
[ "$jobs" = 3 ] || fail "install twice made $jobs jobs"

wid=$(q "SELECT pgwake.register_worker('cronstage', 'cron-host', 4242, '1 second')")
tid=$(q "SELECT pgwake.enqueue('cronstage', '{}')")
[ "$(q "SELECT count(*) FROM pgwake.claim('cronstage', '$wid', '2 seconds')")" = 1 ] || fail "claim failed"
# A release_sql that failed (its column was renamed at the time) and is due
# again: pg_cron's retry_releases job frees the row.
q "CREATE TABLE cron_leads (id int PRIMARY KEY, worker_id text)" >/dev/null
q "SELECT pgwake.set_release_sql('cronrs', 'UPDATE public.cron_leads SET worker_id = NULL WHERE worker_id = \$1')" >/dev/null
rwid=$(q "SELECT pgwake.register_worker('cronrs', 'cron-host')")
q "INSERT INTO cron_leads VALUES (1, '$rwid')" >/dev/null
q "ALTER TABLE cron_leads RENAME COLUMN worker_id TO w" >/dev/null
q "SELECT * FROM pgwake.release_worker('$rwid', 'exit 1')" >/dev/null
q "ALTER TABLE cron_leads RENAME COLUMN w TO worker_id" >/dev/null
[ "$(q "SELECT sqlstate FROM pgwake.release_failures WHERE worker_id = '$rwid'")" = 42703 ] || fail "no release failure recorded"
q "UPDATE pgwake.release_failures SET next_try_at = now()" >/dev/null
note "waiting for pg_cron to release task $tid of silent worker $wid"
wait_sql "SELECT status = 'pending' AND releases = 1 FROM pgwake.tasks WHERE id = $tid" 150 \
    || fail "pg_cron did not release the lease: $(psql -X -qAt -d "$PGTMP_DSN dbname=postgres" -c "SELECT status || ': ' || coalesce(return_message, '') FROM cron.job_run_details ORDER BY runid DESC LIMIT 3")"
[ "$(q "SELECT state || ' ' || reason FROM pgwake.workers WHERE id = '$wid'")" = "dead heartbeat timeout" ] \
    || fail "worker not declared dead by pg_cron"
wait_sql "SELECT worker_id IS NULL FROM cron_leads WHERE id = 1" 70 || fail "pg_cron did not retry the failed release_sql"
[ "$(q "SELECT count(*) FROM pgwake.release_failures")" = 0 ] || fail "release failure left after the retry"

"$PGWAKE" cron remove -d "$TEST_DSN" >/dev/null || fail "cron remove failed"
jobs=$(psql -X -qAt -d "$PGTMP_DSN dbname=postgres" -c "SELECT count(*) FROM cron.job WHERE database = '$db'")
[ "$jobs" = 0 ] || fail "$jobs jobs left after remove"
echo ok
