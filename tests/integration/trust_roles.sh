#!/bin/sh
# trust_roles: workers log in (worker_dsn) as a login role granted
# pgwake_worker: they register, claim, heartbeat, enqueue follow-ups and
# complete; a run goes done. The same role cannot read or write the tables nor
# call release_worker or expire_leases. `pgwake migrate` run by a role that may
# not create roles, while pgwake_worker is missing, says the CREATE ROLE to run.
. "$ROOT/tests/lib/itest.sh"

role=trust_w_$$
q "DROP ROLE IF EXISTS $role" >/dev/null 2>&1
q "CREATE ROLE $role LOGIN IN ROLE pgwake_worker" || fail "create role"
drop_role() { q "DROP ROLE IF EXISTS $role" >/dev/null 2>&1; }
WDSN="$TEST_DSN user=$role"

write_conf pgwake.conf <<EOF2
[pgwake]
host = roles-1
log_dir = $T/logs
recount_interval = 0
worker_dsn = $WDSN

[stage:a]
command = $TESTWORKER
max_workers = 2
heartbeat_interval = 300ms
heartbeat_timeout = 3s

[stage:b]
command = $TESTWORKER
max_workers = 2
heartbeat_interval = 300ms
heartbeat_timeout = 3s
EOF2

start_ready pgwake.conf
run=$(q "INSERT INTO pgwake.runs (stage, params) VALUES ('a',
          '{\"sleep_ms\": 600, \"fanout\": {\"stage\": \"b\", \"count\": 3, \"payload\": {}}}') RETURNING id")
wait_sql "SELECT state = 'done' FROM pgwake.v_runs WHERE id = $run" 30 \
    || fail "run not done: $(q "SELECT string_agg(stage || ':' || status || ':' || COALESCE(last_error, ''), ' ') FROM pgwake.tasks")"
note "run $run done by workers logged in as $role"
# The workers really were that role.
users=$(grep -c "^start " "$TESTWORKER_LOG")
[ "$users" -ge 2 ] || fail "only $users workers started"
[ "$(q "SELECT count(*) FROM pgwake.tasks WHERE status = 'done'")" = 4 ] || fail "not 4 tasks done"
seen=$(q "SELECT count(*) FROM pg_stat_activity WHERE usename = '$role'")
note "sessions of $role now: $seen"
[ "$seen" -ge 1 ] || fail "no worker session logged in as $role"

# What the role cannot do.
denied() {  # denied SQL: must fail with permission denied
    out=$(psql -X -qAt -d "$WDSN" -c "$1" 2>&1) && fail "$role could run: $1 ($out)"
    echo "$out" | grep -q 'permission denied' || fail "$1: $out"
}
wid=$(q "SELECT id FROM pgwake.workers WHERE state IN ('starting', 'alive') LIMIT 1")
denied "UPDATE pgwake.tasks SET status = 'done'"
denied "SELECT lease_token FROM pgwake.tasks"
denied "INSERT INTO pgwake.tasks (stage) VALUES ('a')"
denied "SELECT * FROM pgwake.release_worker('$wid', 'forged')"
denied "SELECT * FROM pgwake.expire_leases()"
denied "SELECT pgwake.retry(1)"
psql -X -qAt -d "$WDSN" -c "SELECT count(*) FROM pgwake.v_stage_stats" >/dev/null || fail "the role cannot read the views"
stop_daemon
[ "$RC" = 0 ] || fail "daemon exit code $RC"

# migrate by a role without CREATEROLE while pgwake_worker is missing (roles
# are cluster-wide: it is renamed away for that one command, then back).
db=$(q "SELECT current_database()")_roles
q "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1
q "CREATE ROLE ${role}_owner LOGIN" || fail "create owner role"
q "CREATE DATABASE $db OWNER ${role}_owner" || fail "create database"
q "ALTER ROLE pgwake_worker RENAME TO pgwake_worker_$$" || fail "rename"
"$PGWAKE" migrate -d "$TEST_DSN dbname=$db user=${role}_owner" >"$T/migrate.out" 2>&1
rc=$?
q "ALTER ROLE pgwake_worker_$$ RENAME TO pgwake_worker" || fail "rename back"
note "migrate as ${role}_owner (exit $rc): $(cat "$T/migrate.out")"
[ "$rc" = 0 ] || fail "migrate failed"
[ "$(grep -c 'CREATE ROLE pgwake_worker NOLOGIN' "$T/migrate.out")" = 1 ] || fail "the CREATE ROLE to run is not said once"
# Once the role exists, the next migrate grants it, silently.
ODSN="$TEST_DSN dbname=$db user=${role}_owner"
"$PGWAKE" migrate -d "$ODSN" >"$T/migrate2.out" 2>&1 || fail "second migrate: $(cat "$T/migrate2.out")"
note "migrate again: $(cat "$T/migrate2.out")"
grep -q 'CREATE ROLE' "$T/migrate2.out" && fail "still asks for the role"
[ "$(psql -X -qAt -d "$ODSN" -c "SELECT has_function_privilege('pgwake_worker', 'pgwake.claim(text,text,interval,int)', 'EXECUTE')")" = t ] \
    || fail "pgwake_worker not granted the worker API by the second migrate"
# The owner (no superuser) still inserts runs and tasks directly.
psql -X -qAt -v ON_ERROR_STOP=1 -d "$ODSN" -c "INSERT INTO pgwake.runs (stage) VALUES ('a')" \
    -c "INSERT INTO pgwake.tasks (stage) VALUES ('a')" >/dev/null || fail "the owner cannot insert"
[ "$(psql -X -qAt -d "$ODSN" -c "SELECT count(*) FROM pgwake.tasks")" = 2 ] || fail "owner's inserts"
q "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1
q "DROP ROLE IF EXISTS ${role}_owner" >/dev/null 2>&1
drop_role
echo ok
