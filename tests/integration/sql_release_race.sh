#!/bin/sh
# sql_release_race: release_worker against a claim still in flight, both ways,
# deterministically with two sessions. A release that comes while a claim of the
# same worker is uncommitted must wait for it and then take that lease back (the
# task ends pending, never leased to a dead worker); a claim that comes while a
# release is uncommitted must wait for it and then get nothing.
. "$ROOT/tests/lib/sqlhelp.sh"

# in_flight_claim LABEL SETUP_SQL: a worker of stage LABEL, SETUP_SQL run on it
# (:W stands for its id), session 1 claims its task inside an open transaction,
# session 2's release_worker must wait, and get the lease once session 1 commits.
in_flight_claim() {
    label=$1
    w=$(q "SELECT pgwake.register_worker('$label', 'host1')") || fail "register_worker"
    t=$(q "SELECT pgwake.enqueue('$label')") || fail "enqueue"
    [ -n "$2" ] && { q "$(echo "$2" | sed "s/:W/'$w'/g")" >/dev/null || fail "$label: setup"; }

    session_open "${label}_claim" 3
    session_send 3 "BEGIN;"
    session_send 3 "SELECT 'claimed ' || id || ' attempt ' || attempts FROM pgwake.claim('$label', '$w');"
    session_sync "${label}_claim" 3 || fail "$label: the claim did not run"

    spawn env PGAPPNAME="${label}_release" psql -X -qAt -v ON_ERROR_STOP=1 -d "$TEST_DSN" \
        -c "SELECT 'released ' || requeued || ' requeued ' || dead || ' dead'
              FROM pgwake.release_worker('$w', 'signal 9')" >"$S/$label.release" 2>&1
    rel=$LAST_PID
    wait_sql "$(backend_waiting_sql "${label}_release")" 20 \
        || fail "$label: release_worker did not wait for the claim in flight"
    sleep 0.2
    kill -0 "$rel" 2>/dev/null || fail "$label: release_worker returned while the claim was uncommitted: $(cat "$S/$label.release")"
    [ "$(q "SELECT state <> 'dead' FROM pgwake.workers WHERE id = '$w'")" = t ] \
        || fail "$label: the worker was declared dead before the claim committed"

    session_send 3 "COMMIT;"
    wait_pid "$rel" 20 || fail "$label: release_worker still waiting after the claim committed"
    [ "$RC" = 0 ] || fail "$label: release_worker failed: $(cat "$S/$label.release")"
    session_close "${label}_claim" 3

    got=$(session_output "${label}_claim")
    [ "$got" = "claimed $t attempt 1" ] || fail "$label: the claim returned '$got'"
    [ ! -s "$S/${label}_claim.err" ] || fail "$label: claim session errors: $(cat "$S/${label}_claim.err")"
    got=$(cat "$S/$label.release")
    [ "$got" = "released 1 requeued 0 dead" ] || fail "$label: release_worker returned '$got'"
    got=$(q "SELECT status || ' owner=' || COALESCE(lease_owner, '-') || ' releases=' || releases
                    || ' attempts=' || attempts FROM pgwake.tasks WHERE id = $t")
    [ "$got" = "pending owner=- releases=1 attempts=1" ] || fail "$label: task ended as '$got'"
    got=$(q "SELECT state || ' ' || reason FROM pgwake.workers WHERE id = '$w'")
    [ "$got" = "dead signal 9" ] || fail "$label: worker ended as '$got'"
    note "$label: release waited for the claim, then requeued its task"
}

# A starting worker: its first claim also turns it alive (it updates the row).
in_flight_claim starting ""
# An alive worker that just beat: the claim only locks the row FOR SHARE.
in_flight_claim alive "SELECT pgwake.heartbeat(:W)"

# The other way round: session 1 releases inside an open transaction; a claim
# of the same worker must wait, then see the worker dead and claim nothing.
w=$(q "SELECT pgwake.register_worker('rev', 'host1')") || fail "register_worker"
q "SELECT pgwake.heartbeat('$w')" >/dev/null
t=$(q "SELECT pgwake.enqueue('rev')") || fail "enqueue"
session_open rev_release 4
session_send 4 "BEGIN;"
session_send 4 "SELECT 'released ' || requeued FROM pgwake.release_worker('$w', 'hung');"
session_sync rev_release 4 || fail "rev: the release did not run"
spawn env PGAPPNAME=rev_claim psql -X -qAt -v ON_ERROR_STOP=1 -d "$TEST_DSN" \
    -c "SELECT 'claimed ' || count(*) FROM pgwake.claim('rev', '$w')" >"$S/rev.claim" 2>&1
cl=$LAST_PID
wait_sql "$(backend_waiting_sql rev_claim)" 20 || fail "rev: the claim did not wait for the release in flight"
session_send 4 "COMMIT;"
wait_pid "$cl" 20 || fail "rev: the claim still waiting after the release committed"
[ "$RC" = 0 ] || fail "rev: claim failed: $(cat "$S/rev.claim")"
session_close rev_release 4
[ "$(cat "$S/rev.claim")" = "claimed 0" ] || fail "rev: the claim of a released worker returned '$(cat "$S/rev.claim")'"
got=$(q "SELECT status || ' attempts=' || attempts FROM pgwake.tasks WHERE id = $t")
[ "$got" = "pending attempts=0" ] || fail "rev: task ended as '$got'"
note "rev: the claim waited for the release, then got nothing"
echo "ok"
