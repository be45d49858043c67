#!/bin/sh
# sql_expire_race: expire_leases() from 4 connections at once over 2,000 leases
# to release (1,000 expired leases of 10 live workers, 1,000 unexpired leases
# of 5 workers past their heartbeat timeout). Each lease is released exactly
# once (the released counts add up, releases = 1 on every task), each timed-out
# worker is declared dead exactly once, live workers stay alive, no deadlock.
. "$ROOT/tests/lib/sqlhelp.sh"

LIVE=10
DYING=5
server_up 1.2 || fail "server_up"
q "INSERT INTO pgwake.tasks (stage, max_attempts)
   SELECT 'exp', CASE WHEN i % 10 = 0 THEN 1 ELSE 5 END FROM generate_series(1, 2000) i" >/dev/null \
    || fail "insert"
i=1
while [ $i -le $LIVE ]; do
    w=$(q "SELECT pgwake.register_worker('exp', 'live$i', heartbeat_timeout => '1 hour')")
    q "SELECT count(*) FROM pgwake.claim('exp', '$w', lease => '1 hour', n => 100)" >/dev/null || fail "claim"
    i=$((i + 1))
done
q "UPDATE pgwake.tasks SET lease_until = now() - interval '1 second' WHERE status = 'leased'" >/dev/null
i=1
while [ $i -le $DYING ]; do
    w=$(q "SELECT pgwake.register_worker('exp', 'dying$i', heartbeat_timeout => '1 second')")
    q "SELECT count(*) FROM pgwake.claim('exp', '$w', lease => '1 hour', n => 200)" >/dev/null || fail "claim"
    i=$((i + 1))
done
q "UPDATE pgwake.workers SET last_heartbeat = now() - interval '1 hour' WHERE host LIKE 'dying%'" >/dev/null
got=$(q "SELECT count(*) FILTER (WHERE status = 'leased') || ' leased, '
             || count(*) FILTER (WHERE status = 'leased' AND lease_until < now()) || ' expired'
           FROM pgwake.tasks")
[ "$got" = "2000 leased, 1000 expired" ] || fail "setup: $got"

# A barrier: the 4 callers queue on an advisory lock this session holds, and
# all start when it lets go.
session_open barrier 3
session_send 3 "SELECT pg_catalog.pg_advisory_lock(4242);"
session_sync barrier 3 || fail "barrier"
pids=""
i=1
while [ $i -le 4 ]; do
    spawn env PGAPPNAME="expirer$i" psql -X -qAt -v ON_ERROR_STOP=1 -d "$TEST_DSN" \
        -c "SELECT pg_catalog.pg_advisory_lock_shared(4242)" \
        -c "SELECT pg_catalog.pg_advisory_unlock_shared(4242)" \
        -c "SELECT 'R|' || released || '|' || array_to_string(dead_workers, ',') FROM pgwake.expire_leases()" \
        >"$S/expirer$i.out" 2>"$S/expirer$i.err"
    pids="$pids $LAST_PID"
    i=$((i + 1))
done
wait_sql "SELECT count(*) = 4 FROM pg_catalog.pg_stat_activity
           WHERE application_name LIKE 'expirer%' AND wait_event_type = 'Lock' AND wait_event = 'advisory'" 20 \
    || fail "the 4 callers did not all reach the barrier"
session_send 3 "SELECT pg_catalog.pg_advisory_unlock(4242);"
for p in $pids; do
    wait_pid "$p" 60 || fail "an expire_leases caller still running after 60 s"
    [ "$RC" = 0 ] || fail "an expire_leases caller failed (exit $RC): $(cat "$S"/expirer*.err)"
done
session_close barrier 3
cat "$S"/expirer*.err | grep . && fail "errors from expire_leases callers (deadlock?)"

grep -h '^R|' "$S"/expirer*.out >"$S/results"
[ "$(wc -l <"$S/results")" = 4 ] || fail "not 4 results: $(cat "$S"/expirer*.out)"
released=$(awk -F'|' '{ s += $2 } END { print s }' "$S/results")
per=$(cut -d'|' -f2 "$S/results" | tr '\n' ' ')
note "released per caller: $per(total $released)"
cut -d'|' -f3 "$S/results" | tr ',' '\n' | grep . | sort >"$S/dead"
note "declared dead: $(tr '\n' ' ' <"$S/dead")"
[ "$released" = 2000 ] || fail "the 4 callers released $released leases, not 2000"
[ "$(sort -u "$S/dead" | wc -l)" = "$(wc -l <"$S/dead")" ] || fail "a worker was declared dead twice"
expect=$(q "SELECT id FROM pgwake.workers WHERE host LIKE 'dying%' ORDER BY id" | sort)
[ "$(cat "$S/dead")" = "$expect" ] || fail "declared dead: $(cat "$S/dead"); expected: $expect"

# A fifth call finds nothing left.
got=$(q "SELECT released || ' ' || cardinality(dead_workers) FROM pgwake.expire_leases()")
[ "$got" = "0 0" ] || fail "a later expire_leases still found work: $got"
got=$(q "SELECT count(*) FILTER (WHERE status = 'pending') || ' pending, '
             || count(*) FILTER (WHERE status = 'dead') || ' dead, '
             || count(*) FILTER (WHERE releases <> 1) || ' not released exactly once'
           FROM pgwake.tasks")
[ "$got" = "1800 pending, 200 dead, 0 not released exactly once" ] || fail "tasks: $got"
got=$(q "SELECT string_agg(state || ' ' || cnt, ', ' ORDER BY state)
           FROM (SELECT state, count(*) AS cnt FROM pgwake.workers GROUP BY state) s")
[ "$got" = "alive $LIVE, dead $DYING" ] || fail "workers: $got"
note "tasks and workers as expected"
echo "ok"
