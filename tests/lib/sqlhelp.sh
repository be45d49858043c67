#!/bin/sh
# sqlhelp.sh: helpers for the SQL layer's shell tests (tests/integration/sql_*.sh):
# one-shot queries, bounded waits, and psql sessions held open on a named pipe
# so that a test can interleave transactions of several connections.
#   . "$ROOT/tests/lib/sqlhelp.sh"
# $S is the test's private folder. On exit every process started through these
# helpers is ended by its pid, SQLH_ON_EXIT is evaluated, and $S is removed.

set -u
: "${TEST_DSN:?TEST_DSN is not set: run this test through tests/run.sh}"
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${BUILD:-$ROOT/build}
S=$(mktemp -d /tmp/pgwake-sqlt.XXXXXX)
SQLH_PIDS=""
SQLH_SEQ=0
SQLH_ON_EXIT=""

sqlh_cleanup() {
    for _p in $SQLH_PIDS; do kill -TERM "$_p" 2>/dev/null; done
    for _p in $SQLH_PIDS; do wait "$_p" 2>/dev/null; done
    [ -n "$SQLH_ON_EXIT" ] && eval "$SQLH_ON_EXIT"
    if [ "${KEEP_TEST_DIR:-0}" = 1 ]; then echo "kept $S"; else rm -rf "$S"; fi
}
trap sqlh_cleanup EXIT
trap 'exit 130' INT TERM HUP

fail() { echo "FAIL: $*" >&2; exit 1; }
note() { echo "# $*"; }

# q SQL: runs SQL in its own connection (autocommit), unaligned, stops at the first error.
q() { psql -X -qAt -v ON_ERROR_STOP=1 -d "$TEST_DSN" -c "$1"; }

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# wait_for CMD TIMEOUT_S: polls a shell condition every 20 ms; 1 on timeout.
wait_for() {
    _deadline=$(( $(now_ms) + $2 * 1000 ))
    while [ "$(now_ms)" -lt "$_deadline" ]; do
        eval "$1" >/dev/null 2>&1 && return 0
        sleep 0.02
    done
    return 1
}

# wait_sql SQL TIMEOUT_S: waits until SQL returns t.
wait_sql() {
    _deadline=$(( $(now_ms) + $2 * 1000 ))
    while [ "$(now_ms)" -lt "$_deadline" ]; do
        [ "$(q "$1" 2>/dev/null)" = t ] && return 0
        sleep 0.02
    done
    return 1
}

# spawn CMD...: runs CMD in the background, remembered for cleanup; its pid in LAST_PID.
spawn() {
    "$@" &
    LAST_PID=$!
    SQLH_PIDS="$SQLH_PIDS $LAST_PID"
}

# wait_pid PID TIMEOUT_S: waits for a spawned process to end, its exit code in RC;
# returns 1 (and leaves it to the cleanup) when it is still running after TIMEOUT_S.
wait_pid() {
    RC=""
    wait_for "! kill -0 $1" "$2" || return 1
    wait "$1"
    RC=$?
    return 0
}

# session_open NAME FD: a psql (application_name NAME) reading SQL from the
# named pipe $S/NAME.in, which this shell keeps open as file descriptor FD
# (3 to 9); its output (unaligned, tuples only) goes to $S/NAME.out, complete
# once the session is closed, and its errors to $S/NAME.err.
session_open() {
    mkfifo "$S/$1.in" || fail "mkfifo $S/$1.in"
    spawn env PGAPPNAME="$1" psql -X -q -At -d "$TEST_DSN" -f "$S/$1.in" >"$S/$1.out" 2>"$S/$1.err"
    eval "SESSION_PID_$1=$LAST_PID"
    eval "exec $2>\"\$S/\$1.in\""
}

# session_send FD SQL: hands SQL (one or more complete statements) to a session.
session_send() { eval "printf '%s\n' \"\$2\" >&$1"; }

# session_sync NAME FD [TIMEOUT_S]: returns once the session has run all it was
# sent (it is idle, or idle in a transaction, after a marker query).
session_sync() {
    SQLH_SEQ=$((SQLH_SEQ + 1))
    session_send "$2" "SELECT 'sync $SQLH_SEQ' AS sync;"
    wait_sql "SELECT count(*) = 1 FROM pg_catalog.pg_stat_activity WHERE application_name = '$1'
                 AND query = 'SELECT ''sync $SQLH_SEQ'' AS sync;' AND state <> 'active'" "${3:-20}"
}

# session_output NAME: what the session printed, without session_sync's markers.
session_output() { grep -v '^sync [0-9]*$' "$S/$1.out"; }

# session_close NAME FD [TIMEOUT_S]: ends the session (end of input) and waits for it.
session_close() {
    eval "exec $2>&-"
    eval "_sp=\$SESSION_PID_$1"
    wait_pid "$_sp" "${3:-20}" || fail "session $1 did not end within ${3:-20} s"
}

# backend_waiting_sql APPNAME: a query that is t while that connection waits
# for a heavyweight lock (a row, a transaction, an advisory lock).
backend_waiting_sql() {
    echo "SELECT count(*) >= 1 FROM pg_catalog.pg_stat_activity
           WHERE application_name = '$1' AND wait_event_type = 'Lock'"
}

# server_up SECONDS: waits until the server has been up that long (expire_leases
# never declares a worker dead within heartbeat_timeout of the server's start).
server_up() {
    q "SELECT pg_catalog.pg_sleep(GREATEST(extract(epoch FROM pg_catalog.pg_postmaster_start_time()
         + interval '$1 seconds' - clock_timestamp()), 0))" >/dev/null
}
