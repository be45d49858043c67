#!/bin/sh
# trust_upgrade: 0002_trust applied over a database holding 0001's schema and
# live data (leased tasks with sequence tokens, live workers, a run, dead
# workers) keeps everything working: old leases complete with their tokens,
# heartbeats and expiry go on, new claims get random tokens, the privileges
# are in place, and a daemon finishes the remaining work.
. "$ROOT/tests/lib/itest.sh"

ADMIN_DSN=$TEST_DSN
db=$(q "SELECT current_database()")_up
q "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1
q "CREATE DATABASE $db" >/dev/null || fail "CREATE DATABASE $db"
TEST_DSN="$ADMIN_DSN dbname=$db"
psql -X -q -v ON_ERROR_STOP=1 -1 -d "$TEST_DSN" -f "$ROOT/sql/0001_schema.sql" >/dev/null || fail "0001 did not apply"

# 0001's world: tokens from a sequence, leases held by live workers.
w1=$(q "SELECT pgwake.register_worker('up', 'old-host', heartbeat_timeout => '1 hour')")
w2=$(q "SELECT pgwake.register_worker('up', 'old-host', heartbeat_timeout => '1 hour')")
q "INSERT INTO pgwake.tasks (stage, payload) SELECT 'up', jsonb_build_object('i', i) FROM generate_series(1, 6) i" >/dev/null
q "INSERT INTO pgwake.runs (stage) VALUES ('up')" >/dev/null
q "SELECT id || ' ' || lease_token FROM pgwake.claim('up', '$w1', n => 2)" >"$T/leases"
q "SELECT count(*) FROM pgwake.claim('up', '$w2')" >/dev/null
w3=$(q "SELECT pgwake.register_worker('up', 'old-host')")
q "SELECT * FROM pgwake.release_worker('$w3', 'exit 1')" >/dev/null
note "0001 leases: $(tr '\n' ' ' <"$T/leases")"

"$PGWAKE" migrate -d "$TEST_DSN" >"$T/migrate.out" 2>&1 || fail "migrate failed: $(cat "$T/migrate.out")"
note "migrate: $(tr '\n' ' ' <"$T/migrate.out")"
# 0002 first; later migrations (0003_release_sql, ...) follow it.
[ "$(head -n 1 "$T/migrate.out")" = "applied 0002_trust" ] || fail "unexpected migrate output"
q "SELECT string_agg(version::text, ' ' ORDER BY version) FROM pgwake.schema_migrations" | grep -Eq '^1 2( |$)' \
    || fail "schema_migrations"

# Old leases: heartbeat extends them, their tokens still complete them.
[ "$(q "SELECT pgwake.heartbeat('$w1')")" = 2 ] || fail "heartbeat of an old worker"
set -- $(head -1 "$T/leases")
[ "$(q "SELECT pgwake.complete($1, $2)")" = t ] || fail "an old lease did not complete with its token"
[ "$(q "SELECT pgwake.complete($1, $2)")" = f ] || fail "completed twice"
set -- $(sed -n 2p "$T/leases")
[ "$(q "SELECT pgwake.complete($1, $2 + 1)")" = f ] || fail "an old lease completed with a guessed token"
# New claims: random tokens, no sequence left.
toks=$(q "SELECT string_agg(lease_token::text, ' ') FROM pgwake.claim('up', '$w1', n => 2)")
note "new tokens: $toks"
set -- $toks
[ $# = 2 ] || fail "claim after the upgrade: $toks"
d=$(( $1 - $2 )); [ "${d#-}" -gt 1 ] || fail "consecutive tokens: $toks"
[ "$(q "SELECT to_regclass('pgwake.lease_token_seq') IS NULL")" = t ] || fail "the token sequence is left"
# Expiry and the failover guard work on the upgraded data.
q "SELECT released FROM pgwake.expire_leases()" >/dev/null || fail "expire_leases after the upgrade"
[ "$(q "SELECT count(*) FROM pgwake.workers WHERE state IN ('starting', 'alive')")" = 2 ] || fail "live workers lost"
[ "$(q "SELECT has_function_privilege('pgwake_worker', 'pgwake.claim(text,text,interval,int)', 'EXECUTE')
              AND NOT has_function_privilege('public', 'pgwake.release_worker(text,text,boolean)', 'EXECUTE')")" = t ] \
    || fail "privileges not in place after the upgrade"

# The old workers end (their host's daemon went away); a daemon does the rest.
q "SELECT * FROM pgwake.release_worker('$w1', 'old daemon gone')" >/dev/null
q "SELECT * FROM pgwake.release_worker('$w2', 'old daemon gone')" >/dev/null
write_conf pgwake.conf <<EOF2
[pgwake]
host = up-1
log_dir = $T/logs
recount_interval = 0

[stage:up]
command = $TESTWORKER
max_workers = 2
task_timeout = 1m
EOF2
start_ready pgwake.conf
wait_sql "SELECT count(*) = 0 FROM pgwake.tasks WHERE status <> 'done'" 30 \
    || fail "work left: $(q "SELECT string_agg(id || ':' || status, ' ') FROM pgwake.tasks WHERE status <> 'done'")"
[ "$(q "SELECT state FROM pgwake.v_runs")" = done ] || fail "the run is not done"
[ "$(q "SELECT count(*) FROM pgwake.workers WHERE host = 'up-1' AND task_timeout = '1 minute'")" -ge 1 ] \
    || fail "the daemon's workers have no task_timeout"
stop_daemon
[ "$RC" = 0 ] || fail "daemon exit code $RC"
TEST_DSN=$ADMIN_DSN
q "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
echo ok
