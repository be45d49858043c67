#!/bin/sh
# sdnotify: systemd's notify protocol as a Type=notify unit sees it, with a
# datagram socket standing in for $NOTIFY_SOCKET. With the database up:
# STATUS=waiting for database, then READY=1 (sent after the "ready" log line)
# with a STATUS= line, workers that do not inherit NOTIFY_SOCKET, and
# STOPPING=1 on SIGTERM. With the database unreachable at start: STATUS=waiting
# for database and no READY=1, until the database appears (a symlink to the
# server's socket), then READY=1.
. "$ROOT/tests/lib/itest.sh"

# listen SOCK OUT DAEMON_LOG: a stand-in for systemd. Each field of each
# datagram becomes a line "N after-ready|before-ready FIELD" in OUT, N counting
# datagrams, the middle word telling whether DAEMON_LOG already held the
# "ready" line when the datagram arrived. Sets LISTENER.
listen() {
    /usr/bin/python3 -c '
import socket, sys
path, out, dlog = sys.argv[1:4]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
n = 0
with open(out, "a", buffering=1) as f:
    while True:
        data = s.recv(65536).decode("utf-8", "replace")
        n += 1
        try:
            with open(dlog) as d:
                seen = " ready: " in d.read()
        except OSError:
            seen = False
        for field in data.split("\n"):
            if field:
                f.write("%d %s %s\n" % (n, "after-ready" if seen else "before-ready", field))
' "$1" "$2" "$3" &
    LISTENER=$!
    wait_for "[ -S '$1' ]" 10 || fail "the notify listener did not bind $1"
}

# first LOG FIELD_REGEX: the datagram number of the first field matching, or nothing.
first() { awk -v re="$2" '$0 ~ re {print $1; exit}' "$1"; }

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
write_conf pgwake.conf <<EOF2
[pgwake]
host = sdnotify-1
log_dir = $T/logs
http_listen = 127.0.0.1:$port
recount_interval = 0

[stage:alpha]
command = $TESTWORKER
idle_timeout = 30s
heartbeat_interval = 1s
heartbeat_timeout = 5s
lease = 30s
EOF2

note "database up: READY=1 after the ready line, STATUS=, STOPPING=1"
listen "$T/notify.sock" "$T/notify.log" "$T/daemon.log"
NOTIFY_SOCKET="$T/notify.sock" WATCHDOG_USEC=400000 start_ready pgwake.conf
wait_for "grep -q ' READY=1\$' '$T/notify.log'" 10 || fail "no READY=1 within 10 s: $(cat "$T/notify.log")"
grep -q '^[0-9]* after-ready READY=1$' "$T/notify.log" || fail "READY=1 came before the ready log line"
ready=$(first "$T/notify.log" ' READY=1$')
waiting=$(first "$T/notify.log" ' STATUS=waiting for database$')
[ -n "$waiting" ] && [ "$waiting" -lt "$ready" ] || fail "no STATUS=waiting for database before READY=1"
grep -Eq "^$ready after-ready STATUS=serving 1 stage" "$T/notify.log" \
    || fail "no STATUS= line with READY=1: $(cat "$T/notify.log")"

note "WATCHDOG=1 from the loop at half of WATCHDOG_USEC (400 ms)"
sleep 1.5
dogs=$(grep -c ' WATCHDOG=1$' "$T/notify.log")
[ "$dogs" -ge 3 ] || fail "only $dogs WATCHDOG=1 in 1.5 s"

note "workers do not inherit NOTIFY_SOCKET (a worker must not talk to systemd as the daemon)"
id=$("$PGWAKE" enqueue -d "$TEST_DSN" alpha '{"sleep_ms": 3000}') || fail "enqueue failed"
wait_sql "SELECT status = 'leased' FROM pgwake.tasks WHERE id = $id" 10 || fail "task $id not claimed"
pid=$(q "SELECT pid FROM pgwake.workers WHERE stage = 'alpha' AND state IN ('starting', 'alive') LIMIT 1")
[ -n "$pid" ] && [ -r "/proc/$pid/environ" ] || fail "no live worker process found"
tr '\0' '\n' <"/proc/$pid/environ" | grep -q '^PGWAKE_STAGE=alpha$' || fail "pid $pid is not the worker"
tr '\0' '\n' <"/proc/$pid/environ" | grep -q '^NOTIFY_SOCKET=' && fail "the worker inherited NOTIFY_SOCKET"

stop_daemon
[ "$RC" = 0 ] || fail "daemon exit code $RC"
wait_for "grep -q ' STOPPING=1\$' '$T/notify.log'" 5 || fail "no STOPPING=1 after SIGTERM"
stopping=$(first "$T/notify.log" ' STOPPING=1$')
[ "$stopping" -gt "$ready" ] || fail "STOPPING=1 before READY=1"
[ "$(grep -c ' READY=1$' "$T/notify.log")" = 1 ] || fail "READY=1 sent more than once"
kill "$LISTENER" 2>/dev/null

note "database unreachable at start: STATUS=waiting for database, no READY=1"
mkdir "$T/sock"
sockhost=$(echo "$TEST_DSN" | sed -n 's/.*host=\(\/[^ ]*\).*/\1/p')
sockport=$(echo "$TEST_DSN" | sed -n 's/.*port=\([0-9]*\).*/\1/p')
sockport=${sockport:-5432}
nodb_dsn="host=$T/sock port=$sockport dbname=nowhere"
[ -n "$sockhost" ] && nodb_dsn=$(echo "$TEST_DSN" | sed "s|host=$sockhost|host=$T/sock|")
sed 's/^host = sdnotify-1$/host = sdnotify-2/' "$T/pgwake.conf" | write_conf nodb.conf
listen "$T/notify2.sock" "$T/notify2.log" "$T/daemon2.log"
NOTIFY_SOCKET="$T/notify2.sock" "$PGWAKE" run -c "$T/nodb.conf" -d "$nodb_dsn" >>"$T/daemon2.log" 2>&1 &
DAEMON_PID=$!
DAEMON_PIDS="$DAEMON_PIDS $DAEMON_PID"
wait_for "grep -q ' STATUS=waiting for database\$' '$T/notify2.log'" 10 \
    || fail "no STATUS=waiting for database: $(cat "$T/notify2.log")"
wait_for_log 'unable to connect to the database' 10 "$T/daemon2.log" || fail "no connection failure logged"
sleep 2
kill -0 "$DAEMON_PID" 2>/dev/null || fail "the daemon gave up while the database was unreachable"
grep -q ' READY=1$' "$T/notify2.log" && fail "READY=1 while the database was unreachable"
grep -q ' ready: ' "$T/daemon2.log" && fail "\"ready\" logged while the database was unreachable"

if [ -n "$sockhost" ] && [ -S "$sockhost/.s.PGSQL.$sockport" ]; then
    note "the database appears (a symlink to the server's socket): READY=1"
    ln -s "$sockhost/.s.PGSQL.$sockport" "$T/sock/.s.PGSQL.$sockport"
    # the reconnect backoff is at most 10 s
    wait_for "grep -q ' READY=1\$' '$T/notify2.log'" 20 || fail "no READY=1 once the database was there"
    grep -q '^[0-9]* after-ready READY=1$' "$T/notify2.log" || fail "READY=1 came before the ready log line"
else
    note "TEST_DSN has no unix socket folder: the database-appears step is skipped"
fi
stop_daemon
[ "$RC" = 0 ] || fail "daemon exit code $RC (database unreachable)"
wait_for "grep -q ' STOPPING=1\$' '$T/notify2.log'" 5 || fail "no STOPPING=1 after SIGTERM"
kill "$LISTENER" 2>/dev/null
echo ok
