#!/bin/sh
# bench/lib/cluster.sh: helpers shared by bench/health.sh and bench/polling.sh,
# sourced after they set W (their folder), PGWAKE, BENCH_HOST, HTTP_PORT,
# DAEMON_DSN, WORKER_DSN and RESULTS: psql, a config, a daemon started and
# stopped, CPU ticks, pg_stat_statements counts, RESULT lines collected.

q() { psql -X -qAt -v ON_ERROR_STOP=1 -d "$PGTMP_DSN" -c "$1"; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

conf() { # conf NAME: [pgwake] plus the stage lines on stdin, into $W/NAME, mode 600
    {
        cat <<EOF
[pgwake]
host = $BENCH_HOST
log_dir = $W/logs
lock_file = $W/pgwake.lock
http_listen = 127.0.0.1:$HTTP_PORT
worker_dsn = $WORKER_DSN

EOF
        cat
    } >"$W/$1"
    chmod 600 "$W/$1"
}

start_daemon() { # start_daemon CONF
    : >"$W/daemon.log"
    "$PGWAKE" run -c "$W/$1" -d "$DAEMON_DSN" >>"$W/daemon.log" 2>&1 &
    DAEMON_PID=$!
    _i=0
    until grep -q ' ready: ' "$W/daemon.log"; do
        _i=$((_i + 1))
        if [ $_i -gt 300 ] || ! kill -0 "$DAEMON_PID" 2>/dev/null; then
            echo "daemon not ready within 30 s; its log:" >&2
            tail -n 20 "$W/daemon.log" >&2
            exit 1
        fi
        sleep 0.1
    done
}

stop_daemon() {
    [ -n "$DAEMON_PID" ] || return 0
    kill -TERM "$DAEMON_PID" 2>/dev/null
    wait "$DAEMON_PID" 2>/dev/null || true
    DAEMON_PID=
}

wait_sql() { # wait_sql SQL SECONDS: until SQL returns t
    _end=$(($(date +%s) + $2))
    until [ "$(q "$1")" = t ]; do
        [ "$(date +%s)" -ge $_end ] && return 1
        sleep 0.2
    done
}

# utime+stime in clock ticks of PIDs.
ticks() { for p in "$@"; do sed 's/^.*) //' /proc/"$p"/stat 2>/dev/null; done | awk '{ s += $12 + $13 } END { print s + 0 }'; }
stmt_reset() { q "SELECT pg_stat_statements_reset()" >/dev/null; }
stmt_calls() { # stmt_calls ROLE: statements ROLE ran since the reset
    q "SELECT COALESCE(sum(calls), 0) FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid WHERE r.rolname = '$1'"
}
backend_pids() { # backend_pids ROLE
    q "SELECT pid FROM pg_stat_activity WHERE usename = '$1' AND pid <> pg_backend_pid()" | tr '\n' ' '
}
collect() { # RESULT lines of stdin into $RESULTS, tagged with run=$1
    sed -n "s/^RESULT /RESULT run=$1 /p" | tee -a "$RESULTS" | sed 's/^RESULT /  /' >&2
}
