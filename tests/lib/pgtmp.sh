#!/bin/sh
# pgtmp.sh: a private throwaway PostgreSQL for tests, benchmarks and the demo.
#   . tests/lib/pgtmp.sh; pgtmp_start [extra postgres -c settings...]; ...; pgtmp_stop
# Exports PGTMP_DIR, PGHOST (the socket folder), PGPORT, PGUSER=postgres and
# PGTMP_DSN. Unix socket only; initdb runs as an unprivileged user (postgres when
# we are root). pg_cron is preloaded when installed.

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

pgtmp_as() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# pgtmp_start [-c name=value ...]: initdb + start; durable=1 keeps fsync on.
pgtmp_start() {
    if [ ! -x "$PG_BIN/initdb" ]; then
        sh "$(dirname "$0")/../../scripts/install-deps" >&2 || true
        [ -x "$PG_BIN/initdb" ] || { echo "pgtmp: $PG_BIN/initdb not found" >&2; return 1; }
    fi
    PGTMP_DIR=$(mktemp -d /tmp/pgwake-pg.XXXXXX) || return 1
    chmod 755 "$PGTMP_DIR"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$PGTMP_DIR"
    pgtmp_as "$PG_BIN/initdb" -U postgres -A trust --nosync -E UTF8 --no-locale \
        -D "$PGTMP_DIR/data" >"$PGTMP_DIR/initdb.log" 2>&1 || {
        cat "$PGTMP_DIR/initdb.log" >&2; return 1; }
    {
        echo "listen_addresses = ''"
        echo "unix_socket_directories = '$PGTMP_DIR'"
        echo "port = 5432"
        echo "max_connections = 200"
        echo "shared_buffers = 128MB"
        if [ "${PGTMP_DURABLE:-0}" = 1 ]; then
            echo "fsync = on"; echo "synchronous_commit = on"
        else
            # synchronous_commit stays on: tests restart the server with -m immediate
            # and must not lose a commit that a client saw succeed.
            echo "fsync = off"; echo "full_page_writes = off"
        fi
        echo "log_min_messages = warning"
        echo "log_line_prefix = '%m [%p] '"
        if [ -f /usr/lib/postgresql/15/lib/pg_cron.so ]; then
            echo "shared_preload_libraries = 'pg_cron'"
            echo "cron.database_name = 'postgres'"
            echo "cron.host = '$PGTMP_DIR'"
            echo "cron.use_background_workers = off"
        fi
        for kv in "$@"; do echo "$kv"; done
    } >>"$PGTMP_DIR/data/postgresql.conf"
    pgtmp_as "$PG_BIN/pg_ctl" -D "$PGTMP_DIR/data" -l "$PGTMP_DIR/postgres.log" -w -t 60 start \
        >/dev/null || { cat "$PGTMP_DIR/postgres.log" >&2; return 1; }
    export PGTMP_DIR PGHOST="$PGTMP_DIR" PGPORT=5432 PGUSER=postgres
    export PGTMP_DSN="host=$PGTMP_DIR port=5432 user=postgres"
    unset PGDATABASE PGPASSWORD PGSERVICE
}

# pgtmp_restart [mode]: pg_ctl restart (e.g. -m immediate), keeps the socket.
pgtmp_restart() {
    pgtmp_as "$PG_BIN/pg_ctl" -D "$PGTMP_DIR/data" -l "$PGTMP_DIR/postgres.log" -w -t 60 \
        restart -m "${1:-fast}" >/dev/null
}

pgtmp_pgctl() { pgtmp_as "$PG_BIN/pg_ctl" -D "$PGTMP_DIR/data" -l "$PGTMP_DIR/postgres.log" "$@"; }

pgtmp_stop() {
    [ -n "${PGTMP_DIR:-}" ] && [ -d "$PGTMP_DIR" ] || return 0
    pgtmp_as "$PG_BIN/pg_ctl" -D "$PGTMP_DIR/data" -m immediate -w stop >/dev/null 2>&1
    rm -rf "$PGTMP_DIR"
    PGTMP_DIR=
}
