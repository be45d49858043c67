#!/bin/sh
# trust_squat: pg_try_advisory_lock is open to every role. A session squatting
# the host key keeps a daemon of that host from starting, and one on the
# maintenance key keeps maintenance from running anywhere: the daemon's
# error, /status and `pgwake check` name the holder (pid, application_name).
. "$ROOT/tests/lib/itest.sh"

write_conf pgwake.conf <<EOF2
[pgwake]
host = squat-1
log_dir = $T/logs
recount_interval = 0
maintenance_poll = 500ms

[stage:alpha]
command = $TESTWORKER
EOF2
port=$(cat "$T/.port.pgwake.conf")

mkfifo "$T/sq.fifo"
psql -X -qAt -d "$TEST_DSN" <"$T/sq.fifo" >"$T/sq.out" 2>&1 &
DAEMON_PIDS="$DAEMON_PIDS $!"
exec 3>"$T/sq.fifo"
echo "SET application_name = 'squatter';
      SELECT 'pid', pg_backend_pid(), pg_advisory_lock(hashtextextended('pgwake.host:' || 'squat-1', 0));" >&3
wait_for "grep -q '^pid|' '$T/sq.out'" 10 || fail "squatter not ready: $(cat "$T/sq.out")"
spid=$(grep '^pid|' "$T/sq.out" | cut -d'|' -f2)
note "squatter pid $spid holds the host key"

"$PGWAKE" check -c "$T/pgwake.conf" -d "$TEST_DSN" >"$T/check1.out" 2>&1
grep -q "^warning  *host squat-1 lock: held by a session that is not a pgwake daemon (pid $spid, .*application_name \"squatter\"" "$T/check1.out" \
    || fail "check does not name the host squatter: $(cat "$T/check1.out")"

start_daemon pgwake.conf
wait "$DAEMON_PID"
rc=$?
[ "$rc" = 1 ] || fail "daemon exit $rc with the host key squatted"
grep -q "host squat-1 is served by a live daemon; give this one a distinct host (its lock is held by pid $spid, .*application_name \"squatter\"" "$T/daemon.log" \
    || fail "start-up error does not name the squatter"

echo "SELECT pg_advisory_unlock_all(); SELECT 'maint', pg_advisory_lock(7040119002);" >&3
wait_for "grep -q '^maint|' '$T/sq.out'" 10 || fail "squatter did not take the maintenance key"
start_ready pgwake.conf "$T/daemon2.log"
wait_for_log "maintenance: held by another session \\(pid $spid, .*application_name \"squatter\"" 10 "$T/daemon2.log" \
    || fail "maintenance squatter not logged"
curl -sf "http://127.0.0.1:$port/status" >"$T/status.json" || fail "no /status"
grep -q "\"maintenance\": *false" "$T/status.json" || fail "maintenance not false: $(cat "$T/status.json")"
grep -q "\"maintenance_holder\": *\"pid $spid, [^\"]*application_name \\\\\"squatter\\\\\"" "$T/status.json" \
    || fail "/status does not name the holder: $(cat "$T/status.json")"
"$PGWAKE" check -c "$T/pgwake.conf" -d "$TEST_DSN" >"$T/check2.out" 2>&1
grep -q "^warning  *maintenance lock: held by a session that is not a pgwake daemon (pid $spid, .*maintenance runs nowhere" "$T/check2.out" \
    || fail "check does not name the maintenance squatter: $(cat "$T/check2.out")"
grep -q "^ok  *host squat-1 lock: held by a pgwake daemon" "$T/check2.out" || fail "check: host lock of the daemon"

echo "SELECT pg_advisory_unlock_all();" >&3
exec 3>&-
wait_for_log 'maintenance: this daemon holds it' 10 "$T/daemon2.log" || fail "maintenance not taken over"
stop_daemon
[ "$RC" = 0 ] || fail "daemon exit code $RC"
echo ok
