#!/bin/sh
# daemon_memlimit_kill: a worker above memory_limit is stopped gracefully and
# replaced; a second SIGTERM skips the graceful part of the stop sequence.
. "$ROOT/tests/lib/itest.sh"

cat >"$T/hog.sh" <<'EOF2'
#!/bin/sh
# Holds about 64 MiB of resident memory, then waits to be stopped.
exec /usr/bin/python3 -c 'import time; a = bytearray(64 << 20); time.sleep(600)'
EOF2
chmod 755 "$T/hog.sh"

write_conf pgwake.conf <<EOF2
[pgwake]
host = memkill-1
log_dir = $T/logs
recount_interval = 0

[stage:hog]
command = $T/hog.sh
min_workers = 1
memory_limit = 32M
stop_timeout = 500ms
kill_timeout = 1s
restart_delay = 200ms

[stage:slow]
command = $TESTWORKER
max_workers = 1
stop_timeout = 30s
kill_timeout = 30s
EOF2
start_ready pgwake.conf
wait_for_log 'hog.1\[[0-9]*\] stopping \(RSS [0-9]+ MiB above memory_limit 32 MiB\)' 15 \
    || fail "the memory hog was not stopped"
wait_for_log 'hog.2\[[0-9]*\] started' 10 || fail "the memory hog was not replaced"
grep -q 'hog.1.*crashed' "$T/daemon.log" && fail "a memory stop counted as a crash"

note "a second SIGTERM during the stop sequence"
id=$("$PGWAKE" enqueue -d "$TEST_DSN" slow '{"sleep_ms": 60000}')
wait_sql "SELECT status = 'leased' FROM pgwake.tasks WHERE id = $id" 10 || fail "long task not claimed"
t0=$(date +%s%N)
kill -TERM "$DAEMON_PID"
sleep 0.3
stop_daemon   # the second SIGTERM
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
note "exited $ms ms after the first SIGTERM (graceful part alone: 30 s)"
[ "$RC" = 0 ] || fail "daemon exit code $RC"
[ "$ms" -lt 5000 ] || fail "the second SIGTERM did not skip to the kill ($ms ms)"
grep -q 'second stop signal: killing every worker now' "$T/daemon.log" || fail "not logged"
[ "$(q "SELECT status || ' ' || attempts FROM pgwake.tasks WHERE id = $id")" = "pending 0" ] \
    || fail "the killed task was not refunded"
echo ok
