#!/bin/sh
# console_tasks: the operator console's task and log calls over HTTP and the
# CLI. GET /tasks filters (stage, state, run) and pages by keyset (limit,
# before -> next_before); GET /tasks/ID has the whole last_error and the
# payload; POST /tasks/ID/retry|cancel pass the control gate (missing or
# wrong token, foreign Host, no custom header: 403; GET: 405), answer 404
# for an unknown task and 409 for a done one or a second cancel; a retried
# dead task ends done. Bad filters are 400 over HTTP and exit 2 in the CLI.
# GET /stages/NAME/log and `pgwake tail` show a line a worker printed.
. "$ROOT/tests/lib/itest.sh"

PY=/usr/bin/python3
PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL="http://127.0.0.1:$PORT"
TOKEN=console-token-1

# call METHOD PATH [curl args...]: the body into $T/body, the status code on stdout.
call() {
    _m=$1 _p=$2; shift 2
    curl -s --noproxy '*' --max-time 10 -o "$T/body" -w '%{http_code}' -X "$_m" "$@" "$URL$_p"
}
expect() {  # expect CODE WHAT METHOD PATH [curl args...]
    _code=$1 _what=$2; shift 2
    _got=$(call "$@")
    [ "$_got" = "$_code" ] || fail "$_what: HTTP $_got, expected $_code: $(cat "$T/body")"
}
jq_() { $PY -c "import json,sys; d=json.load(open('$T/body')); print($1)"; }
CTL="-H X-Pgwake-Token:$TOKEN -H Content-Type:application/json -d {}"

write_conf pgwake.conf <<EOF2
[pgwake]
host = console-1
log_dir = $T/logs
recount_interval = 0
http_listen = 127.0.0.1:$PORT
control_token = $TOKEN

[stage:work]
command = sh -c 'echo "hello from a worker, <b>not html</b>"; exec "\$0"' $TESTWORKER
max_workers = 2
idle_timeout = 1h
heartbeat_interval = 1s
heartbeat_timeout = 5s
lease = 30s
restart_delay = 100ms
EOF2
start_ready pgwake.conf
# The first scrape starts the metrics' count (its next reads add what finished since).
curl -s --noproxy '*' --max-time 10 -o /dev/null "$URL/metrics" || fail "no /metrics"

# A dead task with a long two-line error, a done one, a crashing one that
# succeeds when retried, and pending tasks of a stage nobody serves.
long=$($PY -c 'print("0123456789" * 40)')
dead=$(q "SELECT pgwake.enqueue('work', '{\"fail\": \"disk full\\nsecond line $long\", \"retry\": false}')")
done_id=$(q "SELECT pgwake.enqueue('work', '{}')")
crash=$(q "SELECT pgwake.enqueue('work', '{\"exit\": 1, \"crash_attempts\": 1}', max_attempts => 1)")
run=$(q "INSERT INTO pgwake.runs(stage, params) VALUES ('parked', '{\"n\": 1}') RETURNING id")
p1=$(q "SELECT id FROM pgwake.tasks WHERE run_id = $run")
p2=$(q "SELECT pgwake.enqueue('parked', '{\"n\": 2}')")
wait_sql "SELECT count(*) = 3 FROM pgwake.tasks WHERE id IN ($dead, $done_id, $crash) AND status IN ('dead', 'done')" 20 \
    || fail "tasks not finished: $(q "SELECT id, status, last_error FROM pgwake.tasks")"
[ "$(q "SELECT status FROM pgwake.tasks WHERE id = $crash")" = dead ] || fail "task $crash did not go dead"

note "GET /tasks and its filters"
expect 200 "list" GET /tasks
[ "$(jq_ 'len(d["tasks"])')" = 5 ] || fail "not 5 tasks: $(cat "$T/body")"
[ "$(jq_ 'd["tasks"][0]["id"]')" = "$p2" ] || fail "not newest first"
expect 200 "state=dead" GET "/tasks?state=dead&stage=work"
[ "$(jq_ '",".join(str(t["id"]) for t in d["tasks"])')" = "$crash,$dead" ] || fail "dead filter: $(cat "$T/body")"
[ "$(jq_ '[t for t in d["tasks"] if t["id"] == '$dead'][0]["last_error_cut"]')" = True ] || fail "long error not cut"
expect 200 "run filter" GET "/tasks?run=$run"
[ "$(jq_ '",".join(str(t["id"]) for t in d["tasks"])')" = "$p1" ] || fail "run filter: $(cat "$T/body")"
expect 200 "page 1" GET "/tasks?limit=2"
next=$(jq_ 'd["next_before"]')
[ "$(jq_ 'len(d["tasks"])')" = 2 ] && [ "$next" = "$p1" ] || fail "page 1: $(cat "$T/body")"
expect 200 "page 2" GET "/tasks?limit=2&before=$next"
[ "$(jq_ '",".join(str(t["id"]) for t in d["tasks"])')" = "$crash,$done_id" ] || fail "page 2: $(cat "$T/body")"
expect 200 "page 3" GET "/tasks?limit=2&before=$done_id"
[ "$(jq_ '",".join(str(t["id"]) for t in d["tasks"]), d["next_before"]')" = "$dead None" ] || fail "page 3: $(cat "$T/body")"
for bad in "state=bogus" "limit=0" "limit=x" "limit=100000" "stage=NOT%20A%20STAGE" "before=-1" "run=abc"; do
    expect 400 "bad filter $bad" GET "/tasks?$bad"
done
expect 405 "POST /tasks" POST /tasks $CTL
expect 403 "GET /tasks from a foreign Host" GET /tasks -H Host:evil.example:$PORT
expect 403 "GET /stages/work/log from a foreign Host" GET /stages/work/log -H Host:evil.example:$PORT
expect 200 "one task" GET "/tasks/$dead"
[ "$(jq_ 'd["last_error"].startswith("disk full\nsecond line 0123")')" = True ] || fail "no full last_error: $(cat "$T/body")"
[ "$(jq_ 'len(d["last_error"]) > 400 and d["payload"]["retry"] is False')" = True ] || fail "not the whole task: $(cat "$T/body")"
expect 404 "unknown task" GET /tasks/999999
expect 404 "not a task id" GET /tasks/abc

note "POST /tasks/ID/retry and cancel: the control gate"
expect 403 "retry without token" POST "/tasks/$dead/retry" -H Content-Type:application/json -d '{}'
jq_ 'd["error"]' | grep -q 'missing X-Pgwake-Token' || fail "not the missing-token error: $(cat "$T/body")"
expect 403 "retry with a wrong token" POST "/tasks/$dead/retry" -H X-Pgwake-Token:wrong -H Content-Type:application/json -d '{}'
expect 403 "retry from a foreign Host" POST "/tasks/$dead/retry" -H Host:evil.example:$PORT $CTL
expect 403 "retry from a foreign Origin" POST "/tasks/$dead/retry" -H Origin:http://evil.example $CTL
expect 403 "a form post" POST "/tasks/$dead/retry" -d 'a=b'
expect 405 "GET retry" GET "/tasks/$dead/retry"
expect 404 "unknown action" POST "/tasks/$dead/explode" $CTL
expect 404 "retry an unknown task" POST /tasks/999999/retry $CTL
expect 409 "retry a done task" POST "/tasks/$done_id/retry" $CTL
jq_ 'd["error"]' | grep -q "is done" || fail "409 does not say done: $(cat "$T/body")"
[ "$(q "SELECT status FROM pgwake.tasks WHERE id = $dead")" = dead ] || fail "a refused retry changed the task"
expect 200 "retry the crashed task" POST "/tasks/$crash/retry" $CTL
wait_sql "SELECT status = 'done' FROM pgwake.tasks WHERE id = $crash" 20 || fail "retried task $crash not done"
expect 200 "cancel" POST "/tasks/$p2/cancel" $CTL
[ "$(q "SELECT status || ' ' || last_error FROM pgwake.tasks WHERE id = $p2")" = "dead cancelled" ] || fail "not cancelled"
expect 409 "cancel twice" POST "/tasks/$p2/cancel" $CTL
expect 409 "cancel a done task" POST "/tasks/$done_id/cancel" $CTL

note "GET /stages/NAME/log"
wait_for "grep -q 'hello from a worker' '$T/logs/work.log'" 10 || fail "no worker line in the log"
expect 200 "log" GET "/stages/work/log?lines=50"
[ "$(jq_ 'any("hello from a worker, <b>not html</b>" in l for l in d["lines"])')" = True ] || fail "line not in /log: $(cat "$T/body")"
wid=$(q "SELECT id FROM pgwake.workers WHERE stage = 'work' ORDER BY started_at LIMIT 1")
expect 200 "log of one worker" GET "/stages/work/log?lines=50&worker=$wid"
[ "$(jq_ 'len(d["lines"]) > 0 and all(" '$wid' " in l for l in d["lines"])')" = True ] || fail "worker filter: $(cat "$T/body")"
expect 400 "lines=0" GET "/stages/work/log?lines=0"
expect 404 "log of an unknown stage" GET /stages/nope/log

note "the CLI"
P="$PGWAKE"
"$P" tasks -d "$TEST_DSN" --state dead --stage work >"$T/tasks.out" 2>&1 || fail "pgwake tasks: $(cat "$T/tasks.out")"
grep -Eq "^$dead +work +dead +1/5 .*disk full second line 0" "$T/tasks.out" || fail "tasks table: $(cat "$T/tasks.out")"
COLUMNS=100 "$P" tasks -d "$TEST_DSN" --state dead >"$T/narrow.out"
$PY -c 'import sys; sys.exit(any(len(l.rstrip("\n")) > 100 for l in open(sys.argv[1], encoding="utf-8")))' "$T/narrow.out" \
    || fail "a row wider than the terminal: $(cat "$T/narrow.out")"
"$P" tasks -d "$TEST_DSN" --limit 1 --json | grep -q '"next_before"' || fail "tasks --json"
"$P" tasks -d "$TEST_DSN" --limit 2 | grep -q -- "--before" || fail "no paging hint"
for bad in "--state bogus" "--limit 0" "--stage BAD!" "--run x" "extra"; do
    "$P" tasks -d "$TEST_DSN" $bad >/dev/null 2>&1; rc=$?
    [ $rc = 2 ] || fail "pgwake tasks $bad: exit $rc, expected 2"
done
"$P" retry -d "$TEST_DSN" 999999 2>"$T/err"; rc=$?
[ $rc = 2 ] && grep -q 'no task 999999' "$T/err" || fail "retry unknown: exit $rc $(cat "$T/err")"
"$P" retry -d "$TEST_DSN" "$done_id" 2>"$T/err"; rc=$?
[ $rc = 2 ] && grep -q 'is done' "$T/err" || fail "retry done: exit $rc $(cat "$T/err")"
"$P" retry -d "$TEST_DSN" abc 2>/dev/null; [ $? = 2 ] || fail "retry abc not exit 2"
"$P" retry -d "$TEST_DSN" 2>/dev/null; [ $? = 2 ] || fail "retry without ids not exit 2"
"$P" cancel -d "$TEST_DSN" "$p1" >"$T/out" || fail "cancel $p1"
"$P" cancel -d "$TEST_DSN" "$p1" 2>/dev/null; [ $? = 2 ] || fail "second cancel not exit 2"
"$P" retry -d "$TEST_DSN" --stage parked --dead >"$T/out" || fail "retry --stage --dead"
grep -q '^2 dead tasks of stage parked are pending now' "$T/out" || fail "bulk retry: $(cat "$T/out")"
[ "$(q "SELECT count(*) FROM pgwake.tasks WHERE stage = 'parked' AND status = 'pending'")" = 2 ] || fail "parked not pending"
"$P" tail -c "$T/pgwake.conf" work -n 200 >"$T/tail.out" || fail "pgwake tail"
grep -q 'hello from a worker' "$T/tail.out" || fail "tail: $(cat "$T/tail.out")"
[ "$(wc -l <"$T/tail.out")" -le 200 ] || fail "tail -n 200 printed more"
"$P" tail -c "$T/pgwake.conf" nope 2>/dev/null; [ $? = 2 ] || fail "tail of an unknown stage not exit 2"
"$P" tail -c "$T/pgwake.conf" work -f >"$T/follow.out" 2>&1 &
FPID=$!
DAEMON_PIDS="$DAEMON_PIDS $FPID"
sleep 0.5
q "SELECT pgwake.enqueue('work', '{\"exit\": 1}', max_attempts => 1)" >/dev/null
wait_for "[ \$(grep -c 'hello from a worker' '$T/follow.out') -ge 2 ]" 15 || fail "tail -f did not follow: $(cat "$T/follow.out")"
kill "$FPID"
note "/metrics: task gauges, counters and the duration histogram"
metric() { grep -E "^$1 " "$T/metrics" | awk '{print $2}'; }
scrape_ok() {
    curl -s --noproxy '*' --max-time 10 -o "$T/metrics" "$URL/metrics" || return 1
    [ "$(metric 'pgwake_tasks_completed_total\{stage="work"\}')" -ge 2 ] 2>/dev/null &&
        [ "$(metric 'pgwake_tasks_dead_total\{stage="work"\}')" -ge 2 ] 2>/dev/null
}
wait_for scrape_ok 25 || fail "task counters never counted: $(grep -E '^pgwake_(task|stage_(backlog|dead))' "$T/metrics")"
[ "$(metric 'pgwake_stage_backlog_tasks\{stage="parked"\}')" = 2 ] || fail "backlog of parked: $(grep backlog "$T/metrics")"
age=$(metric 'pgwake_stage_oldest_pending_age_seconds\{stage="parked"\}')
[ -n "$age" ] || fail "no oldest pending age for parked"
[ "$(metric 'pgwake_task_duration_seconds_count\{stage="work"\}')" = "$(metric 'pgwake_task_duration_seconds_bucket\{stage="work",le="\+Inf"\}')" ] \
    || fail "histogram count is not its +Inf bucket"
grep -q '^# TYPE pgwake_task_duration_seconds histogram' "$T/metrics" || fail "no duration histogram"
# The Grafana dashboard uses only names /metrics has.
for name in $(grep -o 'pgwake_[a-z_]*' "$ROOT/docs/grafana-dashboard.json" | sort -u); do
    grep -q "^# TYPE ${name%_bucket} " "$T/metrics" || fail "docs/grafana-dashboard.json uses $name, not in /metrics"
done
grep -q "$TOKEN" "$T/daemon.log" && fail "the token is in the daemon log"
stop_daemon
[ "$RC" = 0 ] || fail "the daemon exited $RC"
! grep -q 'Sanitizer' "$T/daemon.log" || fail "sanitizer report: $(grep -A20 Sanitizer "$T/daemon.log" | head -40)"
echo ok
