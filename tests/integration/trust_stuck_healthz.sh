#!/bin/sh
# trust_stuck_healthz: a wedged database session (its backend SIGSTOPped: no
# answer, and statement_timeout cannot fire) leaves a request of the daemon
# unanswered; past 30 s /healthz answers 503 saying so, and 200 again once
# the session answers.
. "$ROOT/tests/lib/itest.sh"

write_conf pgwake.conf <<EOF2
[pgwake]
host = stuck-1
log_dir = $T/logs
recount_interval = 0

[stage:alpha]
command = $TESTWORKER
EOF2
port=$(cat "$T/.port.pgwake.conf")
health() { curl -s -o "$T/health.out" -w '%{http_code}' "http://127.0.0.1:$port/healthz"; }

start_ready pgwake.conf
[ "$(health)" = 200 ] || fail "/healthz not 200 at start: $(cat "$T/health.out")"
bpid=$(q "SELECT pid FROM pg_catalog.pg_stat_activity WHERE application_name = 'pgwake'
           AND datname = pg_catalog.current_database() AND query LIKE 'LISTEN%' LIMIT 1")
[ -n "$bpid" ] || bpid=$(q "SELECT min(pid) FROM pg_catalog.pg_stat_activity WHERE application_name = 'pgwake'
                              AND datname = pg_catalog.current_database()")
trap 'kill -CONT $bpid 2>/dev/null; itest_cleanup' EXIT
kill -STOP "$bpid"
note "daemon backend $bpid stopped"
# A recount on the main connection: it will not be answered.
q "NOTIFY pgwake_wake, '*'"
curl -s -o /dev/null "http://127.0.0.1:$port/status"
sleep 5
[ "$(health)" = 200 ] || fail "/healthz not 200 5 s into the wedge: $(cat "$T/health.out")"
wait_for "[ \$(health) = 503 ]" 40 || fail "/healthz never 503 with a request unanswered"
grep -q 'unanswered for 3[0-9] s' "$T/health.out" || fail "503 without the reason: $(cat "$T/health.out")"
note "$(cat "$T/health.out")"
kill -CONT "$bpid"
wait_for "[ \$(health) = 200 ]" 20 || fail "/healthz not 200 again: $(cat "$T/health.out")"
stop_daemon
[ "$RC" = 0 ] || fail "daemon exit code $RC"
echo ok
