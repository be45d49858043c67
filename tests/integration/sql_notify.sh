#!/bin/sh
# sql_notify: what a LISTENing connection (the daemon's view) hears, from
# other connections: pgwake_run "<stage> <run_id>"; pgwake_task "<stage>" once
# per statement and stage (a 1,000-row INSERT ... SELECT over 2 stages: 2);
# pgwake_heartbeat "<worker_id> <state>" on register, exited, dead, and nothing
# on a heartbeat or a claim; pgwake_wake from watch_table and by hand. All only
# at commit: a rolled-back insert says nothing, an open transaction nothing yet;
# a session_replication_role = replica session inserts silently.
. "$ROOT/tests/lib/sqlhelp.sh"

# The listener prints "mark <label>" for each mark, then what it heard since
# the previous one (psql prints notifications after a statement's result).
session_open listener 3
session_send 3 "LISTEN pgwake_run; LISTEN pgwake_task; LISTEN pgwake_heartbeat; LISTEN pgwake_wake;"
session_sync listener 3 || fail "listener"

# mark LABEL: the listener prints LABEL and everything heard until now.
mark() {
    session_send 3 "SELECT 'mark $1';"
    wait_sql "SELECT count(*) = 1 FROM pg_catalog.pg_stat_activity WHERE application_name = 'listener'
                 AND query = 'SELECT ''mark $1'';' AND state = 'idle'" 20 || fail "listener stuck at mark $1"
}

mark start
w=$(q "SELECT pgwake.register_worker('ntf', 'host1')") || fail "register"
mark register
q "SELECT pgwake.heartbeat('$w')" >/dev/null
q "SELECT count(*) FROM pgwake.claim('ntf', '$w')" >/dev/null
q "SELECT pgwake.heartbeat('$w')" >/dev/null
mark heartbeat-and-claim
r=$(q "INSERT INTO pgwake.runs (stage, params) VALUES ('ntf', '{\"q\": 1}') RETURNING id") || fail "run"
mark run
q "INSERT INTO pgwake.tasks (stage, payload)
   SELECT CASE WHEN i % 2 = 0 THEN 'alpha' ELSE 'beta' END, jsonb_build_object('i', i)
     FROM generate_series(1, 1000) i" >/dev/null || fail "insert select"
mark insert-select
q "BEGIN; INSERT INTO pgwake.tasks (stage) VALUES ('rolled_back');
   INSERT INTO pgwake.runs (stage) VALUES ('rolled_back');
   SELECT pgwake.register_worker('rolled_back', 'host1'); ROLLBACK" >/dev/null || fail "rollback"
mark rollback
q "SET session_replication_role = replica; INSERT INTO pgwake.tasks (stage) VALUES ('replica');
   INSERT INTO pgwake.runs (stage) VALUES ('replica')" >/dev/null || fail "replica"
mark replica

session_open writer 4
session_send 4 "BEGIN;"
session_send 4 "SELECT pgwake.enqueue('at_commit');"
session_send 4 "INSERT INTO pgwake.runs (stage) VALUES ('at_commit');"
session_sync writer 4 || fail "writer"
mark open-transaction
session_send 4 "COMMIT;"
session_sync writer 4 || fail "writer commit"
mark commit
session_close writer 4
r2=$(q "SELECT max(id) FROM pgwake.runs")

q "SELECT pgwake.worker_exited('$w')" >/dev/null
mark exited
w2=$(q "SELECT pgwake.register_worker('ntf2', 'host1')")
q "SELECT pgwake.enqueue('ntf2')" >/dev/null
q "SELECT count(*) FROM pgwake.claim('ntf2', '$w2')" >/dev/null
mark second-worker
q "SELECT * FROM pgwake.release_worker('$w2', 'signal 9')" >/dev/null
mark released
server_up 1.2
w3=$(q "SELECT pgwake.register_worker('ntf3', 'host1', heartbeat_timeout => '1 second')")
q "UPDATE pgwake.workers SET last_heartbeat = now() - interval '1 hour', state = 'alive' WHERE id = '$w3'" >/dev/null
mark third-worker
q "SELECT * FROM pgwake.expire_leases()" >/dev/null
mark expired

# A real table (inserted into from another connection than the one watching it),
# dropped on exit so that a database reused between runs stays clean.
ADMIN_DSN=$TEST_DSN
SQLH_ON_EXIT="psql -X -q -d \"\$ADMIN_DSN\" -c 'DROP TABLE IF EXISTS public.pgwake_test_leads' >/dev/null 2>&1"
q "DROP TABLE IF EXISTS public.pgwake_test_leads" >/dev/null 2>&1
q "CREATE TABLE public.pgwake_test_leads (id int)" >/dev/null || fail "create table"
q "SELECT pgwake.watch_table('public.pgwake_test_leads', 'scoring')" >/dev/null 2>&1 || fail "watch_table"
q "INSERT INTO public.pgwake_test_leads SELECT generate_series(1, 10)" >/dev/null || fail "insert"
mark watched-insert
q "NOTIFY pgwake_wake, 'company_research'"
mark manual-wake
session_close listener 3
[ ! -s "$S/listener.err" ] || fail "listener errors: $(cat "$S/listener.err")"

# Notifications between two marks come in no promised order: sort each block.
session_output listener | sed -e 's/ received from server process with PID [0-9]*\.$//' \
    -e 's/^Asynchronous notification //' \
  | awk '/^mark /{ b++; print b "\t0\t" $0; next } { print b "\t1\t" $0 }' \
  | sort -t "$(printf '\t')" -k1,1n -k2,2n -k3 | cut -f3- >"$S/heard"

cat >"$S/expected" <<EOF
mark start
mark register
"pgwake_heartbeat" with payload "$w starting"
mark heartbeat-and-claim
mark run
"pgwake_run" with payload "ntf $r"
"pgwake_task" with payload "ntf"
mark insert-select
"pgwake_task" with payload "alpha"
"pgwake_task" with payload "beta"
mark rollback
mark replica
mark open-transaction
mark commit
"pgwake_run" with payload "at_commit $r2"
"pgwake_task" with payload "at_commit"
mark exited
"pgwake_heartbeat" with payload "$w exited"
mark second-worker
"pgwake_heartbeat" with payload "$w2 starting"
"pgwake_task" with payload "ntf2"
mark released
"pgwake_heartbeat" with payload "$w2 dead"
"pgwake_task" with payload "ntf2"
mark third-worker
"pgwake_heartbeat" with payload "$w3 starting"
mark expired
"pgwake_heartbeat" with payload "$w3 dead"
mark watched-insert
"pgwake_wake" with payload "scoring"
mark manual-wake
"pgwake_wake" with payload "company_research"
EOF
if ! diff -u "$S/expected" "$S/heard"; then
    fail "the listener heard something else (diff above: - expected, + heard)"
fi
note "heard exactly what was expected"
echo "ok"
