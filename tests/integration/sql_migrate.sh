#!/bin/sh
# sql_migrate: `pgwake migrate` on a migrated database applies nothing and
# exits 0; --status lists every migration; two migrates at once against a fresh
# empty database both succeed and apply each migration once; a database newer
# than the binary is refused. Needs build/pgwake: missing, the test fails.
. "$ROOT/tests/lib/sqlhelp.sh"

PGWAKE="$BUILD/pgwake"
[ -x "$PGWAKE" ] || fail "$PGWAKE is missing: run make first"
ls "$ROOT"/sql/[0-9]*.sql >/dev/null 2>&1 || fail "no migrations in $ROOT/sql"
names=$(cd "$ROOT/sql" && ls [0-9]*.sql | sed 's/\.sql$//' | sort)
nmig=$(echo "$names" | wc -l)
versions=$(echo "$names" | sed 's/_.*//; s/^0*//' | tr '\n' ' ')
note "migrations: $(echo "$names" | tr '\n' ' ')"

# 1. The test database is migrated already: a second run applies nothing.
before=$(q "SELECT string_agg(version || '@' || applied_at, ' ' ORDER BY version) FROM pgwake.schema_migrations")
"$PGWAKE" migrate -d "$TEST_DSN" >"$S/again.out" 2>&1 || fail "migrate again failed: $(cat "$S/again.out")"
note "migrate again: $(cat "$S/again.out")"
grep -q '^applied' "$S/again.out" && fail "migrate again applied something: $(cat "$S/again.out")"
after=$(q "SELECT string_agg(version || '@' || applied_at, ' ' ORDER BY version) FROM pgwake.schema_migrations")
[ "$before" = "$after" ] || fail "schema_migrations changed: '$before' -> '$after'"

# 2. --status: one line per migration, all applied here.
"$PGWAKE" migrate --status -d "$TEST_DSN" >"$S/status.out" 2>&1 || fail "migrate --status failed: $(cat "$S/status.out")"
echo "$names" | sed 's/^/applied /' >"$S/status.expected"
sed 's/  */ /g' "$S/status.out" >"$S/status.got"
diff -u "$S/status.expected" "$S/status.got" || fail "migrate --status on a migrated database (diff above)"

# 3. A fresh empty database, migrated by two pgwake at once.
db=$(q "SELECT current_database()")_mig
q "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1
q "CREATE DATABASE $db" >/dev/null || fail "CREATE DATABASE $db"
ADMIN_DSN=$TEST_DSN
SQLH_ON_EXIT="psql -X -q -d \"\$ADMIN_DSN\" -c 'DROP DATABASE IF EXISTS $db WITH (FORCE)' >/dev/null 2>&1"
DSN2="$TEST_DSN dbname=$db"
"$PGWAKE" migrate --status -d "$DSN2" >"$S/status0.out" 2>&1 || fail "migrate --status on an empty database failed: $(cat "$S/status0.out")"
echo "$names" | sed 's/^/pending /' >"$S/status.expected"
sed 's/  */ /g' "$S/status0.out" >"$S/status.got"
diff -u "$S/status.expected" "$S/status.got" || fail "migrate --status on an empty database (diff above)"

# Start them at once; if the migration lock's key can be read from the source,
# hold it first so that both really queue behind it and race when it is let go.
key=$(sed -n 's/^#define MIGRATE_LOCK_KEY "\([0-9]*\)".*/\1/p' "$ROOT/src/migrate.c" 2>/dev/null)
if [ -n "$key" ]; then
    TEST_DSN_SAVED=$TEST_DSN
    TEST_DSN=$DSN2
    session_open holder 3
    session_send 3 "SELECT pg_catalog.pg_advisory_lock($key);"
    session_sync holder 3 || fail "holder"
    TEST_DSN=$TEST_DSN_SAVED
fi
spawn "$PGWAKE" migrate -d "$DSN2" >"$S/m1.out" 2>&1
p1=$LAST_PID
spawn "$PGWAKE" migrate -d "$DSN2" >"$S/m2.out" 2>&1
p2=$LAST_PID
if [ -n "$key" ]; then
    wait_sql "SELECT count(*) = 2 FROM pg_catalog.pg_stat_activity
               WHERE datname = '$db' AND wait_event_type = 'Lock' AND wait_event = 'advisory'" 20 \
        || fail "the two migrates did not both wait for the migration lock"
    note "both migrates queued on the migration lock"
    session_send 3 "SELECT pg_catalog.pg_advisory_unlock($key);"
fi
wait_pid "$p1" 60 || fail "migrate 1 still running after 60 s"
rc1=$RC
wait_pid "$p2" 60 || fail "migrate 2 still running after 60 s"
rc2=$RC
[ -n "$key" ] && session_close holder 3
note "migrate 1 (exit $rc1): $(tr '\n' ' ' <"$S/m1.out")"
note "migrate 2 (exit $rc2): $(tr '\n' ' ' <"$S/m2.out")"
[ "$rc1" = 0 ] && [ "$rc2" = 0 ] || fail "concurrent migrates: exit $rc1 and $rc2"
for n in $names; do
    c=$(cat "$S/m1.out" "$S/m2.out" | grep -c "^applied $n\$")
    [ "$c" = 1 ] || fail "$n applied $c times by the two migrates"
done
got=$(psql -X -qAt -d "$DSN2" -c "SELECT count(*) || ' rows, ' || count(DISTINCT version) || ' versions: '
                                           || string_agg(version::text, ' ' ORDER BY version)
                                      FROM pgwake.schema_migrations")
[ "$got" = "$nmig rows, $nmig versions: ${versions% }" ] || fail "schema_migrations: $got"
# The schema works.
got=$(psql -X -qAt -d "$DSN2" -c "SELECT pgwake.enqueue('m') > 0")
[ "$got" = t ] || fail "the migrated schema does not work: $got"

# 4. A database newer than this binary is refused, and --status says so.
psql -X -q -d "$DSN2" -c "INSERT INTO pgwake.schema_migrations (version) VALUES (9999)" || fail "insert 9999"
"$PGWAKE" migrate -d "$DSN2" >"$S/newer.out" 2>&1
rc=$?
note "migrate on a newer database (exit $rc): $(cat "$S/newer.out")"
[ "$rc" != 0 ] || fail "migrate accepted a database newer than itself"
grep -q 9999 "$S/newer.out" || fail "the refusal does not name the database's version"
"$PGWAKE" migrate --status -d "$DSN2" >"$S/newer-status.out" 2>&1
grep -q 9999 "$S/newer-status.out" || fail "--status does not report the newer version: $(cat "$S/newer-status.out")"
echo "ok"
