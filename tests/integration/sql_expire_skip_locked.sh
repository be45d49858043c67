#!/bin/sh
# sql_expire_skip_locked: one task row held by another session (an application
# transaction, a worker stopped inside its own) must not hold up expiry for
# every other worker. expire_worker and expire_leases skip the held lease,
# declare its worker dead, release everything else, ask to be called again
# within a second, and release the held lease once the row is free.
. "$ROOT/tests/lib/sqlhelp.sh"

worker() {  # worker STAGE: a worker of STAGE holding one task, its deadline long past
    w=$(q "SELECT pgwake.register_worker('$1', 'host1', NULL, '2 seconds')") || fail "register $1"
    t=$(q "SELECT pgwake.enqueue('$1')") || fail "enqueue $1"
    [ "$(q "SELECT count(*) FROM pgwake.claim('$1', '$w')")" = 1 ] || fail "claim $1"
    q "UPDATE pgwake.workers SET last_heartbeat = now() - interval '1 hour',
                                 started_at = now() - interval '1 hour' WHERE id = '$w'" >/dev/null
}
bounded() {  # bounded SQL: as pg_cron runs it (no lock_timeout), a wait turned into a failure
    psql -X -qAt -v ON_ERROR_STOP=1 -d "$TEST_DSN" -c "SET statement_timeout = '5s'" -c "$1" 2>&1
}
# Deaths are never declared within heartbeat_timeout of the server start.
wait_sql "SELECT pgwake.server_epoch() < now() - interval '3 seconds'" 20 || fail "server_epoch"
worker held;  a=$w; ta=$t
worker held2; c=$w; tc=$t
worker free;  b=$w; tb=$t

session_open holder 3
session_send 3 "BEGIN;"
session_send 3 "SELECT id FROM pgwake.tasks WHERE id IN ($ta, $tc) FOR UPDATE;"
session_sync holder 3 || fail "the holder did not lock the tasks"

got=$(bounded "SELECT dead FROM pgwake.expire_worker('$c')") || fail "expire_worker waited on the held row: $got"
[ "$got" = t ] || fail "expire_worker returned '$got'"
got=$(bounded "SELECT array_to_string(dead_workers, ',') || ' soon=' || COALESCE((next_deadline_s <= 1)::text, 'none')
                 FROM pgwake.expire_leases()") || fail "expire_leases waited on the held row: $got"
[ "$got" = "$b,$a soon=true" ] || fail "expire_leases returned '$got' (want $b,$a soon=true)"
[ "$(q "SELECT status FROM pgwake.tasks WHERE id = $tb")" = pending ] || fail "the free lease was not released"
got=$(q "SELECT string_agg(status || ' ' || lease_owner, ',' ORDER BY id) FROM pgwake.tasks WHERE id IN ($ta, $tc)")
[ "$got" = "leased $a,leased $c" ] || fail "a held lease changed under its lock: $got"
note "expire_worker and expire_leases declared the workers dead and released the free lease past held rows"

session_send 3 "COMMIT;"
session_close holder 3
got=$(q "SELECT released FROM pgwake.expire_leases()")
[ "$got" = 2 ] || fail "the held leases were not released once free (released $got)"
got=$(q "SELECT string_agg(status || ' attempts=' || attempts || ' releases=' || releases, ',' ORDER BY id)
           FROM pgwake.tasks WHERE id IN ($ta, $tc)")
[ "$got" = "pending attempts=1 releases=1,pending attempts=1 releases=1" ] || fail "held tasks ended as '$got'"
note "the held leases were released once each, attempt counted, after the lock went"
