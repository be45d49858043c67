#!/bin/sh
# health_cron: with no daemon running at all, pg_cron alone (scheduled by
# `pgwake cron install`) declares a silent worker dead and releases its expired
# lease; `pgwake cron remove` unschedules. pg_cron 1.4 steps by the minute, so
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
note "waiting for pg_cron to release task $tid of silent worker $wid"
wait_sql "SELECT status = 'pending' AND releases = 1 FROM pgwake.tasks WHERE id = $tid" 150 \
    || fail "pg_cron did not release the lease: $(psql -X -qAt -d "$PGTMP_DSN dbname=postgres" -c "SELECT status || ': ' || coalesce(return_message, '') FROM cron.job_run_details ORDER BY runid DESC LIMIT 3")"
[ "$(q "SELECT state || ' ' || reason FROM pgwake.workers WHERE id = '$wid'")" = "dead heartbeat timeout" ] \
    || fail "worker not declared dead by pg_cron"

"$PGWAKE" cron remove -d "$TEST_DSN" >/dev/null || fail "cron remove failed"
jobs=$(psql -X -qAt -d "$PGTMP_DSN dbname=postgres" -c "SELECT count(*) FROM cron.job WHERE database = '$db'")
[ "$jobs" = 0 ] || fail "$jobs jobs left after remove"
echo ok
