#!/bin/sh
# bench/lib/daemon.sh: helpers shared by the bench scripts that run a daemon
# (wake, burst, idle, health, polling, python_worker, release_sql; sourced,
# from the repository root):
#   bench_setup NAME [-b PROG]... [postgres settings...]  private folder $W,
#       pgwake and bench/wake (and each bench/PROG.c) built and copied into
#       $W/bin (others may rebuild build/ meanwhile), a throwaway cluster
#       (tests/lib/pgtmp.sh), migrated; everything is stopped on exit, $BG_PID
#       (a script's background load) included
#   bench_roles [LIMIT] roles bench_daemon and bench_worker, so pg_stat_statements
#       tells the daemon's queries from the workers' ($DAEMON_DSN, $WORKER_DSN);
#       bench_worker may open LIMIT connections (default 120, -1 = no limit)
#   bench_conf FILE   the configuration on stdin into $W/FILE, mode 600
#   bench_start CONF  starts `pgwake run` (log $W/daemon.log), waits for "ready"
#   bench_stop        SIGTERM to the daemon, waits for it
#   proc_cpu_ns PID, proc_ticks PID..., proc_ctx PID, proc_rss_kb PID
#   backend_pids ROLE, collect RUN (RESULT lines kept in $RESULTS)
#   bench_machine     "N CPUs, model, Linux X, PostgreSQL Y"
# Progress goes to stderr; the scripts print Markdown on stdout.

BUILD=${BUILD:-build}
DAEMON_PID=
BG_PID=
W=

bench_log() { echo "# $*" >&2; }

bench_cleanup() {
    [ -n "$BG_PID" ] && kill -TERM "$BG_PID" 2>/dev/null
    if [ -n "$DAEMON_PID" ]; then
        # Up to 10 s: a daemon with hundreds of workers takes a while to stop them.
        kill -TERM "$DAEMON_PID" 2>/dev/null
        _i=0
        while kill -0 "$DAEMON_PID" 2>/dev/null && [ $_i -lt 100 ]; do sleep 0.1; _i=$((_i + 1)); done
        kill -KILL "$DAEMON_PID" 2>/dev/null
        wait "$DAEMON_PID" 2>/dev/null
        DAEMON_PID=
    fi
    pgtmp_stop
    if [ -n "$W" ] && [ -d "$W" ]; then
        if [ "${KEEP_BENCH_DIR:-0}" = 1 ]; then echo "kept $W" >&2; else rm -rf "$W" 2>/dev/null || { sleep 1; rm -rf "$W"; }; fi
    fi
}

# bench_bins DIR: the binaries bench_setup needs, under build folder DIR.
bench_bins() {
    echo "$1/pgwake"
    for _p in $_progs; do echo "$1/bench/$_p"; done
}

bench_setup() {
    _name=$1
    shift
    _progs=wake
    while [ "${1:-}" = -b ]; do
        _progs="$_progs $2"
        shift 2
    done
    . tests/lib/pgtmp.sh
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
    W=$(mktemp -d "/tmp/pgwake-$_name.XXXXXX")
    chmod 755 "$W"
    mkdir -p "$W/bin" "$W/logs"
    # Other engineers build in the same tree: build what we need, fall back on
    # what is there, and run private copies. BENCH_SRC=head (or a commit)
    # builds that commit instead, with this tree's bench/*.c, in
    # /tmp/pgwake-bench-src-REV; BENCH_SRC_DIR=DIR builds the sources in DIR.
    if [ -n "${BENCH_SRC_DIR:-}" ]; then
        # a source folder of its own (e.g. a patched copy to try a change)
        mkdir -p "$BENCH_SRC_DIR/bench" && cp bench/*.c "$BENCH_SRC_DIR/bench/"
        make -C "$BENCH_SRC_DIR" -s $(bench_bins build) >"$W/make.log" 2>&1 ||
            { tail -n 5 "$W/make.log" >&2; exit 1; }
        BUILD=$BENCH_SRC_DIR/build
        BENCH_REV="sources in $BENCH_SRC_DIR"
    elif [ "${BENCH_SRC:-tree}" != tree ]; then
        _want=$BENCH_SRC
        [ "$_want" = head ] && _want=HEAD
        _rev=$(git rev-parse --short "$_want^{commit}" 2>/dev/null) ||
            { echo "$_name: BENCH_SRC=$BENCH_SRC is not a commit" >&2; exit 2; }
        _src=/tmp/pgwake-bench-src-$_rev
        if [ ! -x "$_src/build/pgwake" ]; then
            rm -rf "$_src" && mkdir -p "$_src"
            git archive "$_rev" | tar -x -C "$_src"
        fi
        mkdir -p "$_src/bench" && cp bench/*.c "$_src/bench/"
        make -C "$_src" -s $(bench_bins build) >"$W/make.log" 2>&1 ||
            { tail -n 5 "$W/make.log" >&2; exit 1; }
        BUILD=$_src/build
        BENCH_REV="commit $_rev"
    elif ! make -s $(bench_bins "$BUILD") >"$W/make.log" 2>&1; then
        echo "$_name: make failed (tail below); using the binaries already built" >&2
        tail -n 5 "$W/make.log" >&2
        BENCH_REV="working tree of $(git rev-parse --short HEAD) (make failed: earlier binaries)"
    else
        BENCH_REV="working tree of $(git rev-parse --short HEAD)"
        [ -z "$(git status --porcelain -- src sql include 2>/dev/null)" ] && BENCH_REV="commit $(git rev-parse --short HEAD)"
    fi
    for b in $(bench_bins "$BUILD"); do
        [ -x "$b" ] || { echo "$_name: $b missing" >&2; exit 1; }
        cp "$b" "$W/bin/"
    done
    PGWAKE="$W/bin/pgwake"
    WAKE="$W/bin/wake"
    pgtmp_start "$@" >&2
    "$PGWAKE" migrate -d "$PGTMP_DSN" >/dev/null
    DAEMON_DSN=$PGTMP_DSN
    WORKER_DSN=$PGTMP_DSN
    # http_listen: a port of our own, so parallel runs and tests do not collide.
    HTTP_PORT=$((20000 + $$ % 20000))
}

q() { psql -X -qAt -v ON_ERROR_STOP=1 -d "$PGTMP_DSN" -c "$1"; }

bench_roles() {
    # The workers' role is no superuser and has a connection limit, so a daemon
    # that starts too many workers cannot lock the benchmark itself out.
    q "CREATE ROLE bench_daemon LOGIN SUPERUSER;
       CREATE ROLE bench_worker LOGIN CONNECTION LIMIT ${1:-120};
       GRANT USAGE ON SCHEMA pgwake TO bench_worker;
       GRANT ALL ON ALL TABLES IN SCHEMA pgwake TO bench_worker;
       GRANT ALL ON ALL SEQUENCES IN SCHEMA pgwake TO bench_worker;
       GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA pgwake TO bench_worker" >/dev/null
    DAEMON_DSN="host=$PGTMP_DIR port=$PGPORT user=bench_daemon dbname=postgres"
    WORKER_DSN="host=$PGTMP_DIR port=$PGPORT user=bench_worker dbname=postgres"
}

bench_conf() {
    cat >"$W/$1"
    chmod 600 "$W/$1"
}

bench_start() {
    : >"$W/daemon.log"
    "$PGWAKE" run -c "$W/$1" -d "$DAEMON_DSN" >>"$W/daemon.log" 2>&1 &
    DAEMON_PID=$!
    _i=0
    while ! grep -q ' ready: ' "$W/daemon.log"; do
        _i=$((_i + 1))
        if [ $_i -gt 300 ] || ! kill -0 "$DAEMON_PID" 2>/dev/null; then
            echo "daemon not ready within 30 s; its log:" >&2
            tail -n 20 "$W/daemon.log" >&2
            exit 1
        fi
        sleep 0.1
    done
}

bench_stop() {
    [ -n "$DAEMON_PID" ] || return 0
    kill -TERM "$DAEMON_PID" 2>/dev/null
    wait "$DAEMON_PID" 2>/dev/null || true
    DAEMON_PID=
}

# wait_sql SQL SECONDS: until SQL returns t.
wait_sql() {
    _i=0
    while [ "$(q "$1")" != t ]; do
        _i=$((_i + 1))
        [ $_i -gt $(($2 * 20)) ] && return 1
        sleep 0.05
    done
    return 0
}

# CPU time of every thread of PID in nanoseconds (schedstat: precise, unlike ticks).
proc_cpu_ns() {
    cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f", s }'
}

# utime + stime of PIDs in clock ticks (fields 14 and 15, after the command
# name); a pid gone counts 0.
proc_ticks() {
    for _p in "$@"; do sed 's/^.*) //' /proc/"$_p"/stat 2>/dev/null; done | awk '{ s += $12 + $13 } END { print s + 0 }'
}

# voluntary + involuntary context switches of every thread of PID: its wake-ups.
proc_ctx() {
    cat /proc/"$1"/task/*/status 2>/dev/null |
        awk '/^(voluntary|nonvoluntary)_ctxt_switches:/ { s += $2 } END { print s + 0 }'
}

proc_rss_kb() { awk '/^VmRSS:/ { print $2 }' /proc/"$1"/status; }
proc_hwm_kb() { awk '/^VmHWM:/ { print $2 }' /proc/"$1"/status; }

bench_machine() {
    _cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
    echo "$(nproc) CPUs, $_cpu, Linux $(uname -r), PostgreSQL $(q 'SHOW server_version')"
}

bench_load() { cut -d' ' -f1-3 /proc/loadavg; }

# backend_pids ROLE: the pids of ROLE's backends, space-separated.
backend_pids() {
    q "SELECT pid FROM pg_stat_activity WHERE usename = '$1' AND pid <> pg_backend_pid()" | tr '\n' ' '
}

# collect RUN: the RESULT lines of stdin, tagged run=RUN, appended to $RESULTS
# and shown on stderr.
collect() { sed -n "s/^RESULT /RESULT run=$1 /p" | tee -a "$RESULTS" | sed 's/^RESULT /  /' >&2; }

# stmt_reset / stmt_calls ROLE [PATTERN]: pg_stat_statements calls by ROLE
# (statements whose text matches the ILIKE PATTERN, default all) since the last
# reset. Needs bench_setup ... "shared_preload_libraries = 'pg_cron,pg_stat_statements'"
# (the last setting wins) and bench_stmts.
bench_stmts() { q "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >/dev/null; }
stmt_reset() { q "SELECT pg_stat_statements_reset()" >/dev/null; }
stmt_calls() {
    q "SELECT COALESCE(sum(calls), 0) FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid
       WHERE r.rolname = '$1' AND s.query ILIKE '${2:-%}'"
}
# stmt_list ROLE: "calls<TAB>query" of ROLE's statements, most called first.
stmt_list() {
    q "SELECT calls || E'\t' || regexp_replace(query, '\s+', ' ', 'g') FROM pg_stat_statements s
       JOIN pg_roles r ON r.oid = s.userid WHERE r.rolname = '$1' ORDER BY calls DESC, query"
}
PRELOAD="shared_preload_libraries = 'pg_cron,pg_stat_statements'"
[ -f /usr/lib/postgresql/15/lib/pg_cron.so ] || PRELOAD="shared_preload_libraries = 'pg_stat_statements'"

# stmt_summary ROLE DIVISOR: ROLE's statements since the reset, per DIVISOR
# (e.g. per task), named shortly: "1.00 stage_pending, 2.02 claim".
stmt_summary() {
    stmt_list "$1" | awk -F '\t' -v d="$2" '
        {
            q = $2; name = ""
            if (match(q, /pgwake\.[a-z_]+/)) name = substr(q, RSTART + 7, RLENGTH - 7)
            else if (match(q, /^[A-Za-z]+( [a-z_]+)?/)) name = substr(q, RSTART, RLENGTH)
            if (q ~ /FROM pgwake\.tasks/ && q ~ /lease_owner/) name = "adopt"
            if (!(name in c)) order[++n] = name
            c[name] += $1
        }
        END {
            if (n == 0) { printf "none"; exit }
            for (i = 1; i <= n; i++)
                printf "%s%.2f %s", (i > 1 ? ", " : ""), c[order[i]] / d, order[i]
        }'
}
