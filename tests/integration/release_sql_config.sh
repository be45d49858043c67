#!/bin/sh
# release_sql_config: a release_sql the database refuses (does not parse, names
# a missing column, holds two statements) is a configuration error naming file,
# line and key (the line is read back: write_conf adds http_listen and
# lock_file), found by `pgwake check` (exit 2) and at start (exit 2), and a
# refused statement executes nothing; a reload changes the statement live and
# a bad one at reload keeps the previous one in force.
. "$ROOT/tests/lib/itest.sh"

q "CREATE SCHEMA pm" >/dev/null
q "CREATE TABLE pm.cand (id int PRIMARY KEY, status text NOT NULL DEFAULT 'pending', worker_id text)"
conf() { # NAME RELEASE_SQL
    write_conf "$1" <<EOF2
[pgwake]
host = rsql-conf
log_dir = $T/logs

[stage:leads]
command = $ROOT/tests/lib/lease_worker.sh exit
pending_sql = SELECT count(*) FROM pm.cand WHERE status = 'pending'
release_sql = $2
EOF2
}
expect_refused() { # NAME PATTERN
    l=$(grep -n '^release_sql' "$T/$1" | cut -d: -f1)
    "$PGWAKE" check -c "$T/$1" -d "$TEST_DSN" >"$T/check.out" 2>&1
    rc=$?
    [ "$rc" = 2 ] || fail "$1: check exit $rc: $(cat "$T/check.out")"
    grep -q "^problem  *$T/$1:$l: \[stage:leads\] release_sql: $2" "$T/check.out" \
        || fail "$1: check did not name it: $(cat "$T/check.out")"
    "$PGWAKE" run -c "$T/$1" -d "$TEST_DSN" >"$T/run.out" 2>&1
    rc=$?
    [ "$rc" = 2 ] || fail "$1: run exit $rc: $(tail -3 "$T/run.out")"
    grep -q "ERROR $T/$1:$l: \[stage:leads\] release_sql: $2" "$T/run.out" \
        || fail "$1: run did not name it: $(cat "$T/run.out")"
    grep -q ' ready: ' "$T/run.out" && fail "$1: the daemon got ready"
    note "$1 refused: $(grep -o 'release_sql: .*' "$T/check.out")"
}
conf syntax.conf "UPDAT pm.cand SET worker_id = NULL WHERE worker_id = \$1"
expect_refused syntax.conf 'syntax error at or near "UPDAT" (SQLSTATE 42601)'
conf column.conf "UPDATE pm.cand SET statuz = 'pending' WHERE worker_id = \$1"
expect_refused column.conf 'column "statuz" of relation "cand" does not exist'
conf two.conf "UPDATE pm.cand SET status = 'x' WHERE worker_id = \$1; DROP TABLE pm.cand"
expect_refused two.conf 'it must be one statement'
[ "$(q "SELECT count(*) FROM pm.cand")" = 0 ] || fail "pm.cand changed"

good="UPDATE pm.cand SET status = 'pending', worker_id = NULL WHERE worker_id = \$1 AND status = 'leased'"
conf good.conf "$good"
"$PGWAKE" check -c "$T/good.conf" -d "$TEST_DSN" >"$T/check.out" 2>&1 || fail "good: check: $(cat "$T/check.out")"
grep -q '^ok  *stage leads: release_sql accepted' "$T/check.out" || fail "good: not reported"
start_ready good.conf
[ "$(q "SELECT statement FROM pgwake.release_statements WHERE stage = 'leads'")" = "$good" ] \
    || fail "statement not registered"

note "reload: a new statement applies live; a bad one keeps it"
newer="UPDATE pm.cand SET status = 'retry', worker_id = NULL WHERE worker_id = \$1 AND status = 'leased'"
conf good.conf "$newer"
kill -HUP "$DAEMON_PID"
wait_sql "SELECT statement LIKE '%retry%' FROM pgwake.release_statements WHERE stage = 'leads'" 10 \
    || fail "reload did not register the new statement"
conf good.conf "UPDATE pm.cand SET nope = 1 WHERE worker_id = \$1"
kill -HUP "$DAEMON_PID"
wait_for_log "release_sql: column \"nope\" of relation \"cand\" does not exist.*previous release_sql stays" 10 \
    || fail "bad reload not logged"
[ "$(q "SELECT statement LIKE '%retry%' FROM pgwake.release_statements WHERE stage = 'leads'")" = t ] \
    || fail "bad reload replaced the statement"
kill -0 "$DAEMON_PID" || fail "daemon died on a bad reload"
stop_daemon
[ "$RC" = 0 ] || fail "daemon exit code $RC"
echo ok
