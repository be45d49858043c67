#!/bin/sh
# itest.sh: helpers for integration tests that drive the real build/pgwake with
# real workers against the test's database ($TEST_DSN, from tests/run.sh).
#   . "$ROOT/tests/lib/itest.sh"
# Every test gets a private folder $T (config, logs), and its daemons and
# stray processes are stopped on exit, whatever happens.

set -u
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${BUILD:-$ROOT/build}
PGWAKE="$BUILD/pgwake"
TESTWORKER="$BUILD/workers/testworker"
T=$(mktemp -d /tmp/pgwake-it.XXXXXX)
chmod 755 "$T"
export TESTWORKER_LOG="$T/worker-events.log"
DAEMON_PIDS=""

itest_cleanup() {
    for p in $DAEMON_PIDS; do kill -TERM "$p" 2>/dev/null; done
    sleep 0.2
    for p in $DAEMON_PIDS; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    pkill -KILL -f "$T/" 2>/dev/null
    if [ "${KEEP_TEST_DIR:-0}" = 1 ]; then echo "kept $T"; else rm -rf "$T"; fi
}
trap itest_cleanup EXIT
trap 'exit 130' INT TERM

fail() { echo "FAIL: $*" >&2; for f in "$T"/daemon*.log; do [ -f "$f" ] && { echo "--- $f"; tail -30 "$f"; }; done; exit 1; }
note() { echo "# $*"; }

q() { psql -X -qAt -v ON_ERROR_STOP=1 -d "$TEST_DSN" -c "$1"; }

# wait_for CMD TIMEOUT_S: polls a shell condition every 50 ms.
wait_for() {
    _deadline=$(( $(date +%s%N) / 1000000 + $2 * 1000 ))
    while [ $(( $(date +%s%N) / 1000000 )) -lt $_deadline ]; do
        eval "$1" >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    return 1
}

# wait_sql SQL TIMEOUT_S: waits until SQL returns t.
wait_sql() { wait_for "[ \"\$(q \"$1\")\" = t ]" "$2"; }

# wait_for_log REGEX TIMEOUT_S [FILE]
wait_for_log() { wait_for "grep -Eq -- '$1' '${3:-$T/daemon.log}'" "$2"; }

# free_port: a TCP port nobody listens on right now, on loopback.
free_port() {
    /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# write_conf NAME: the config on stdin into $T/NAME. Mode 600: the file may
# hold secrets. Without an http_listen of its own, the [pgwake] section gets
# a free port, so daemons of a test (and of parallel runs) never collide;
# without a lock_file, $T/locks/NAME.lock (see lock_in_test_dir).
write_conf() {
    cat >"$T/$1.in"
    if grep -q '^\[pgwake\]' "$T/$1.in" && ! grep -q '^http_listen' "$T/$1.in"; then
        # One port per file name: a rewritten file (for a reload) keeps it.
        [ -f "$T/.port.$1" ] || free_port >"$T/.port.$1"
        _port=$(cat "$T/.port.$1")
        sed -i "/^\[pgwake\]/a http_listen = 127.0.0.1:$_port" "$T/$1.in"
    fi
    mkdir -p "$T/locks"
    lock_in_test_dir "$T/locks/$1.lock" <"$T/$1.in" >"$T/$1"
    rm -f "$T/$1.in"
    chmod 600 "$T/$1"
}

# lock_in_test_dir PATH: copies a config from stdin to stdout, adding
# "lock_file = PATH" to its [pgwake] section when that sets none: the
# default is one file per config path in /tmp (/run for root), which every
# test would leave behind. A lock_file in $T/locks/ came from a file
# write_conf wrote before (a test's edited copy of it): it is replaced in
# place, so the copy has a lock of its own, as it would by default. An added
# line goes last in the section (before its trailing blank lines), so the
# line numbers a test asserts in [pgwake] stay as written.
lock_in_test_dir() {
    awk -v line="lock_file = $1" -v ours="lock_file = $T/locks/" '
        function flush() { printf "%s", blanks; blanks = "" }
        function add() { if (inpg && !has) print line; inpg = 0 }
        /^\[/ { add(); flush(); inpg = !done && /^\[pgwake\]/; done = done || inpg; has = 0; print; next }
        inpg && index($0, ours) == 1 { flush(); print line; has = 1; next }
        inpg && /^lock_file[ \t]*=/ { has = 1 }
        inpg && /^[ \t]*$/ { blanks = blanks $0 "\n"; next }
        { flush(); print }
        END { add(); flush() }'
}

# start_daemon CONF [LOG]: runs pgwake in the background; sets DAEMON_PID.
# With VALGRIND=1 the daemon runs under valgrind (definite leaks and errors
# make it exit 99, which the tests' exit-code checks catch).
start_daemon() {
    _log=${2:-$T/daemon.log}
    _vg=""
    [ "${VALGRIND:-0}" = 1 ] && _vg="valgrind -q --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=99 --log-file=$T/valgrind.%p.log"
    $_vg "$PGWAKE" run -c "$T/$1" -d "$TEST_DSN" >>"$_log" 2>&1 &
    DAEMON_PID=$!
    DAEMON_PIDS="$DAEMON_PIDS $DAEMON_PID"
}

# start_ready CONF [LOG]: start_daemon, then wait for its "ready" line.
start_ready() {
    start_daemon "$@"
    wait_for_log ' ready: ' 20 "${2:-$T/daemon.log}" || fail "daemon not ready within 20 s"
}

# stop_daemon [PID]: SIGTERM and wait; the exit code goes into $RC (not a
# subshell: only the shell that started the daemon can wait for it).
stop_daemon() {
    _p=${1:-$DAEMON_PID}
    kill -TERM "$_p" 2>/dev/null
    wait "$_p"
    RC=$?
}

# live_workers STAGE: workers of STAGE the database thinks are running.
live_workers() { q "SELECT count(*) FROM pgwake.workers WHERE stage = '$1' AND state IN ('starting', 'alive')"; }

# stage_procs STAGE: this test's processes started for STAGE (PGWAKE_STAGE and
# this test's TESTWORKER_LOG in their environment: other tests may run too).
stage_procs() {
    _n=0
    for _e in /proc/[0-9]*/environ; do
        { tr '\0' '\n' <"$_e" | grep -x -e "PGWAKE_STAGE=$1" -e "TESTWORKER_LOG=$TESTWORKER_LOG" \
              | wc -l | grep -qx 2; } 2>/dev/null && _n=$((_n + 1))
    done
    echo $_n
}

# start_smtp_sink: a loopback SMTP server recording messages as JSON lines in
# $T/smtp.jsonl; sets SMTP_PORT.
start_smtp_sink() {
    [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null \
        || { echo "python3-aiosmtpd missing"; exit 77; }
    /usr/bin/python3 "$ROOT/tests/lib/smtp_sink.py" --out "$T/smtp.jsonl" --port-file "$T/smtp.port" \
        "$@" >"$T/smtp.log" 2>&1 &
    SMTP_PID=$!
    DAEMON_PIDS="$DAEMON_PIDS $SMTP_PID"
    wait_for "[ -s '$T/smtp.port' ]" 10 || fail "SMTP sink did not start: $(cat "$T/smtp.log")"
    SMTP_PORT=$(cat "$T/smtp.port")
}

# smtp_alerts: an [alerts] section sending to the sink, batching and
# rate-limiting at 1 s, for a write_conf heredoc: $(smtp_alerts)
smtp_alerts() {
    printf '[alerts]\nemail_to = ops@example.com\nsmtp_url = smtp://127.0.0.1:%s\n' "$SMTP_PORT"
    printf 'email_from = pgwake@example.com\nbatch_window = 1s\nmin_interval = 1s\n'
}

# mail_count SUBSTRING: messages received whose data contains SUBSTRING.
mail_count() {
    [ -f "$T/smtp.jsonl" ] || { echo 0; return; }
    /usr/bin/python3 -c '
import json, sys
n = 0
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e.get("event") == "message" and sys.argv[2] in e.get("data", ""):
        n += 1
print(n)' "$T/smtp.jsonl" "$1"
}
