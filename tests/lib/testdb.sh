#!/bin/sh
# testdb.sh: one fresh, migrated database per test.
# With a private cluster (pgtmp.sh) each test gets CREATE DATABASE ... TEMPLATE
# pgwake_template; with PGWAKE_TEST_DSN the named database is reset instead, and
# only when it is clearly a test database.

testdb_init() {
    if [ -n "${PGWAKE_TEST_DSN:-}" ]; then
        db=$(psql -X -qAt -d "$PGWAKE_TEST_DSN" -c "select current_database()") || return 1
        case "$db" in
            *_test) ;;
            *) if [ "${PGWAKE_TEST_DESTRUCTIVE:-0}" != 1 ]; then
                   echo "refusing to run tests against database \"$db\": its name does not end in _test" \
                        "(set PGWAKE_TEST_DESTRUCTIVE=1 to allow it; its schema pgwake will be dropped)" >&2
                   exit 2
               fi ;;
        esac
        return 0
    fi
    [ -n "${PGTMP_DIR:-}" ] || pgtmp_start || return 1
    psql -X -q -d "$PGTMP_DSN dbname=postgres" -c "CREATE DATABASE pgwake_template" || return 1
    "$BUILD/pgwake" migrate -d "$PGTMP_DSN dbname=pgwake_template" >/dev/null || return 1
    TESTDB_SEQ=0
}

testdb_new() {
    if [ -n "${PGWAKE_TEST_DSN:-}" ]; then
        psql -X -q -d "$PGWAKE_TEST_DSN" -c "DROP SCHEMA IF EXISTS pgwake CASCADE" 2>/dev/null
        "$BUILD/pgwake" migrate -d "$PGWAKE_TEST_DSN" >/dev/null || return 1
        TEST_DSN=$PGWAKE_TEST_DSN
    else
        TESTDB_SEQ=$((TESTDB_SEQ + 1))
        TEST_DB="t$$_$TESTDB_SEQ"
        psql -X -q -d "$PGTMP_DSN dbname=postgres" \
            -c "CREATE DATABASE $TEST_DB TEMPLATE pgwake_template" || return 1
        TEST_DSN="$PGTMP_DSN dbname=$TEST_DB"
    fi
    export TEST_DSN
}

testdb_drop() {
    [ -n "${PGWAKE_TEST_DSN:-}" ] && return 0
    psql -X -q -d "$PGTMP_DSN dbname=postgres" -c "DROP DATABASE IF EXISTS $TEST_DB WITH (FORCE)" 2>/dev/null
}
