#!/bin/sh
# sql_lockorder: heartbeat(w) and claim(..., w) of one worker run at the same
# time (the worker library heartbeats from its own thread and connection while
# the main connection claims) and must never deadlock, whatever else holds the
# worker's row. Each round: a third transaction holds the row FOR SHARE (as a
# claim or heartbeat of the worker in flight does), a heartbeat and a claim
# queue behind it, and it lets go. Both must succeed.
. "$ROOT/tests/lib/sqlhelp.sh"

ROUNDS=${LOCKORDER_ROUNDS:-4}
# Deadlocks are detected after deadlock_timeout: make that short, to fail fast.
export PGOPTIONS="${PGOPTIONS:-} -c deadlock_timeout=100ms"
w=$(q "SELECT pgwake.register_worker('lo', 'host1')") || fail "register_worker"
q "INSERT INTO pgwake.tasks (stage) SELECT 'lo' FROM generate_series(1, $ROUNDS)" >/dev/null

spawn_beat() {
    spawn env PGAPPNAME=lo_beat psql -X -qAt -v ON_ERROR_STOP=1 -d "$TEST_DSN" \
        -c "SELECT 'held ' || pgwake.heartbeat('$w')" >"$S/beat$r.out" 2>&1
    pb=$LAST_PID
}
spawn_claim() {
    spawn env PGAPPNAME=lo_claim psql -X -qAt -v ON_ERROR_STOP=1 -d "$TEST_DSN" \
        -c "SELECT 'claimed ' || count(*) FROM pgwake.claim('lo', '$w', lease => '1 hour')" >"$S/claim$r.out" 2>&1
    pc=$LAST_PID
}

session_open holder 3
deadlocks=0
r=1
while [ $r -le $ROUNDS ]; do
    # An old heartbeat, so that the claim refreshes the worker's row too.
    q "UPDATE pgwake.workers SET last_heartbeat = now() - interval '1 hour' WHERE id = '$w'" >/dev/null
    session_send 3 "BEGIN;"
    session_send 3 "SELECT 1 FROM pgwake.workers WHERE id = '$w' FOR SHARE;"
    session_sync holder 3 || fail "holder"
    # Which of the two comes first alternates from round to round.
    if [ $((r % 2)) = 1 ]; then
        spawn_beat; wait_sql "$(backend_waiting_sql lo_beat)" 20 || fail "round $r: heartbeat did not wait"
        spawn_claim
    else
        spawn_claim; wait_sql "$(backend_waiting_sql lo_claim)" 20 || fail "round $r: claim did not wait"
        spawn_beat
    fi
    wait_sql "SELECT count(*) = 2 FROM pg_catalog.pg_stat_activity
               WHERE application_name IN ('lo_beat', 'lo_claim') AND wait_event_type = 'Lock'" 20 \
        || fail "round $r: heartbeat and claim did not both wait behind the holder"
    session_send 3 "COMMIT;"
    wait_pid "$pb" 30 || fail "round $r: heartbeat still running after 30 s"
    rb=$RC
    wait_pid "$pc" 30 || fail "round $r: claim still running after 30 s"
    rcl=$RC
    if grep -q 'deadlock detected' "$S/beat$r.out" "$S/claim$r.out"; then
        deadlocks=$((deadlocks + 1))
        note "round $r: $(grep -h 'ERROR' "$S/beat$r.out" "$S/claim$r.out" | head -1)"
        grep -h -A2 'DETAIL' "$S/beat$r.out" "$S/claim$r.out" | sed 's/^/#   /'
    elif [ "$rb" != 0 ] || [ "$rcl" != 0 ]; then
        fail "round $r: heartbeat exit $rb, claim exit $rcl: $(cat "$S/beat$r.out" "$S/claim$r.out")"
    fi
    r=$((r + 1))
done
session_close holder 3
[ "$deadlocks" = 0 ] || fail "heartbeat and claim of one worker deadlocked in $deadlocks of $ROUNDS rounds"
got=$(q "SELECT count(*) FROM pgwake.tasks WHERE status = 'leased'")
[ "$got" = "$ROUNDS" ] || fail "$got tasks claimed, not $ROUNDS"
note "no deadlock in $ROUNDS rounds"
echo "ok"
