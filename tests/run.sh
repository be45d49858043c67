#!/bin/sh
# run.sh: pgwake's test runner. `tests/run.sh all|unit|sql|integration|python [NAME...]`
# Starts one throwaway PostgreSQL (tests/lib/pgtmp.sh) unless PGWAKE_TEST_DSN is
# set, gives every SQL and integration test a fresh migrated database, runs the
# layers in order (stopping at the first that fails) and ends with one line
# "N passed, N failed".
set -u
cd "$(dirname "$0")/.." || exit 2
ROOT=$(pwd)
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
export BUILD ROOT
LAYER=${1:-all}
[ $# -gt 0 ] && shift
ONLY="$*"
PASS=0
FAIL=0
SKIP=0
FAILED=""
. "$ROOT/tests/lib/pgtmp.sh"
. "$ROOT/tests/lib/testdb.sh"

cleanup() { pgtmp_stop; }
trap cleanup EXIT
trap 'exit 130' INT TERM

selected() {  # selected NAME: true when no filter was given or NAME matches one
    [ -z "$ONLY" ] && return 0
    for o in $ONLY; do case "$1" in *"$o"*) return 0 ;; esac; done
    return 1
}

result() {  # result NAME RC
    if [ "$2" -eq 0 ]; then
        PASS=$((PASS + 1)); echo "ok    $1"
    elif [ "$2" -eq 77 ]; then
        SKIP=$((SKIP + 1)); echo "skip  $1"
    else
        FAIL=$((FAIL + 1)); FAILED="$FAILED $1"; echo "FAIL  $1 (exit $2)"
    fi
}

VG=""
[ "${VALGRIND:-0}" = 1 ] && VG="valgrind -q --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=99"

run_unit() {
    for t in "$BUILD"/tests/test_*; do
        [ -x "$t" ] || continue
        name=unit/$(basename "$t")
        selected "$name" || continue
        out=$(mktemp)
        $VG "$t" >"$out" 2>&1
        rc=$?
        [ $rc -ne 0 ] && cat "$out"
        rm -f "$out"
        result "$name" $rc
    done
}

run_sql() {
    for f in tests/sql/*.sql; do
        [ -f "$f" ] || continue
        base=$(basename "$f" .sql)
        name=sql/$base
        selected "$name" || continue
        testdb_new || { result "$name" 1; continue; }
        out=$(mktemp)
        # psql -a echoes the script, so the expected file reads as a transcript.
        (cd tests/sql && PGOPTIONS="-c client_min_messages=notice" \
            psql -X -a -q -v VERBOSITY=terse -d "$TEST_DSN" -f "$base.sql") >"$out" 2>&1
        if diff -u "tests/expected/$base.out" "$out" >"$out.diff" 2>&1; then
            rc=0
        else
            rc=1; head -80 "$out.diff"
            [ "${SQLTEST_ACCEPT:-0}" = 1 ] && cp "$out" "tests/expected/$base.out"
        fi
        rm -f "$out" "$out.diff"
        testdb_drop
        result "$name" $rc
    done
}

run_integration() {
    for f in tests/integration/*.sh; do
        [ -f "$f" ] || continue
        name=integration/$(basename "$f" .sh)
        selected "$name" || continue
        testdb_new || { result "$name" 1; continue; }
        log="$BUILD/test-logs/$(basename "$f" .sh).log"
        mkdir -p "$BUILD/test-logs"
        start=$(date +%s)
        timeout -k 10 "${ITEST_TIMEOUT:-300}" sh "$f" >"$log" 2>&1
        rc=$?
        [ $rc -ne 0 ] && [ $rc -ne 77 ] && { echo "--- $log (tail)"; tail -40 "$log"; }
        echo "      $(( $(date +%s) - start ))s"
        testdb_drop
        result "$name" $rc
    done
}

# run_python: the Python library's pytest suite (tests/python) under Debian's
# /usr/bin/python3, against the same PostgreSQL (PGTMP_DSN) and build/pgwake.
# Filters: `python NAME` or, with `all`, `python/NAME` (pytest -k NAME).
run_python() {
    ks="" any=0
    for o in $ONLY; do
        case "$LAYER:$o" in
            all:python | all:python/) any=1 ;;
            all:python/*) any=1; ks="$ks${ks:+ or }${o#python/}" ;;
            python:*) any=1; o=${o#python/}; [ -n "$o" ] && ks="$ks${ks:+ or }$o" ;;
        esac
    done
    [ -z "$ONLY" ] || [ "$any" = 1 ] || return 0
    if ! /usr/bin/python3 -c 'import psycopg, pytest' 2>/dev/null; then
        echo "python3-psycopg or python3-pytest missing (scripts/install-deps)"; result python 77; return
    fi
    mkdir -p "$BUILD/test-logs"
    log="$BUILD/test-logs/python.log"
    start=$(date +%s)
    timeout -k 10 "${PYTEST_TIMEOUT:-600}" /usr/bin/python3 -m pytest -q -rfEs -p no:cacheprovider \
        ${ks:+-k "$ks"} tests/python >"$log" 2>&1
    rc=$?
    summary=$(tail -1 "$log")
    n() { echo "$summary" | grep -o "[0-9]* $1" | grep -o '^[0-9]*' || echo 0; }
    p=$(n passed) f=$(( $(n failed) + $(n error) )) s=$(n skipped)
    if [ $rc -ne 0 ] && [ $rc -ne 5 ] && [ "$f" -eq 0 ]; then f=1; fi  # a crash or timeout
    [ "$f" -gt 0 ] && { echo "--- $log (tail)"; tail -60 "$log"; }
    PASS=$((PASS + p)); FAIL=$((FAIL + f)); SKIP=$((SKIP + s))
    for t in $(sed -n 's/^\(FAILED\|ERROR\) tests\/python\/\([^ ]*\).*/\2/p' "$log"); do
        FAILED="$FAILED python/$t"
    done
    [ "$f" -gt 0 ] && [ -z "$(sed -n '/^\(FAILED\|ERROR\) /p' "$log")" ] && FAILED="$FAILED python"
    echo "python: $p passed, $f failed, $s skipped in $(( $(date +%s) - start ))s (log: $log)"
}

layer_ok() { [ "$FAIL" -eq 0 ]; }

case "$LAYER" in
    unit) run_unit ;;
    sql) testdb_init && run_sql ;;
    integration) testdb_init && run_integration ;;
    python) testdb_init && run_python ;;
    all)
        run_unit
        if layer_ok; then testdb_init && run_sql; fi
        if layer_ok; then run_integration; fi
        if layer_ok; then run_python; fi
        ;;
    *) echo "usage: tests/run.sh all|unit|sql|integration|python [NAME...]" >&2; exit 2 ;;
esac

[ -n "$FAILED" ] && echo "failed:$FAILED"
if [ "$SKIP" -gt 0 ]; then
    echo "$PASS passed, $FAIL failed, $SKIP skipped"
else
    echo "$PASS passed, $FAIL failed"
fi
[ "$FAIL" -eq 0 ]
