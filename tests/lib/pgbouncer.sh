#!/bin/sh
# pgbouncer.sh: a PgBouncer in front of the test's PostgreSQL, in the test's
# folder. Source after itest.sh and pgtmp.sh.
#   start_pgbouncer NAME MODE   (MODE: session|transaction|statement)
# Sets NAME_DSN (e.g. session_DSN): TEST_DSN's database through the pool.

start_pgbouncer() {
    command -v pgbouncer >/dev/null || { echo "pgbouncer not installed"; exit 77; }
    _d="$T/pgb-$1"
    mkdir -p "$_d"
    _port=$(free_port)
    _db=$(q "SELECT current_database()")
    echo '"postgres" ""' >"$_d/users.txt"
    cat >"$_d/pgbouncer.ini" <<EOF
[databases]
* = host=$PGTMP_DIR port=$PGPORT

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $_port
unix_socket_dir = $_d
auth_type = trust
auth_file = $_d/users.txt
pool_mode = $2
default_pool_size = 20
max_client_conn = 200
logfile = $_d/pgbouncer.log
pidfile = $_d/pgbouncer.pid
EOF
    [ "$(id -u)" -eq 0 ] && chown -R postgres: "$_d"
    pgtmp_as pgbouncer -d "$_d/pgbouncer.ini" || fail "pgbouncer did not start"
    wait_for "psql -X -qAt -d 'host=$_d port=$_port user=postgres dbname=$_db' -c 'SELECT 1'" 10 \
        || fail "pgbouncer ($2) not answering: $(tail -5 "$_d/pgbouncer.log")"
    # pgbouncer forked itself away: name its pid, so it goes with the test.
    DAEMON_PIDS="$DAEMON_PIDS $(cat "$_d/pgbouncer.pid")"
    eval "${1}_DSN='host=$_d port=$_port user=postgres dbname=$_db'"
}
