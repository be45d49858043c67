#!/bin/sh
# daemon_claim_batch: claim_batch = 25 (PGWAKE_CLAIM_BATCH): the C library
# claims up to 25 tasks per round trip and completes the successes together.
# 600 tasks of stage a (plain ones, ones with follow-ups to stage b, final
# failures, and ones whose worker exits on their first attempt) with
# max_workers = 2: every plain and follow-up task done exactly once, the
# failures dead, the crashed ones done on a retry; completions shared commits
# (one finished_at per batch statement), which claim n = 1 never does.
. "$ROOT/tests/lib/itest.sh"

{
    echo "[pgwake]"
    echo "host = batch-1"
    echo "log_dir = $T/logs"
    echo "recount_interval = 0"
    for s in a b; do
        echo
        echo "[stage:$s]"
        echo "command = $TESTWORKER"
        echo "max_workers = 2"
        echo "claim_batch = 25"
        echo "idle_timeout = 1s"
        echo "restart_delay = 100ms"
        echo "max_restarts = 0"
        echo "heartbeat_interval = 1s"
        echo "heartbeat_timeout = 10s"
        echo "lease = 30s"
    done
} | write_conf pgwake.conf

start_ready pgwake.conf
q "INSERT INTO pgwake.tasks(stage, payload)
   SELECT 'a', CASE WHEN g % 12 = 0 THEN '{\"fanout\": {\"stage\": \"b\", \"count\": 2, \"payload\": {}}}'
                    WHEN g % 12 = 1 THEN '{\"fail\": \"no\", \"retry\": false}'
                    WHEN g % 100 = 2 THEN '{\"exit\": 1, \"crash_attempts\": 1}'
                    ELSE '{}' END::jsonb
     FROM generate_series(1, 600) g" >/dev/null
# 50 fan out (100 b-tasks), 50 fail for good, 6 crash once, 494 plain.
wait_sql "SELECT count(*) = 700 AND count(*) FILTER (WHERE status IN ('pending', 'leased')) = 0
            FROM pgwake.tasks" 120 \
    || fail "not finished: $(q "SELECT string_agg(stage || ' ' || status || ' ' || n, ', ') FROM (SELECT stage, status, count(*) n FROM pgwake.tasks GROUP BY 1, 2) s")"

[ "$(q "SELECT count(*) FROM pgwake.tasks WHERE status = 'dead'")" = 50 ] || fail "dead: $(q "SELECT count(*) FROM pgwake.tasks WHERE status = 'dead'"), expected 50"
[ "$(q "SELECT count(*) FROM pgwake.tasks WHERE status = 'dead' AND payload ? 'fail'")" = 50 ] \
    || fail "a task that should succeed went dead"
[ "$(q "SELECT count(*) FROM pgwake.tasks WHERE payload ? 'exit' AND status = 'done' AND attempts >= 2")" = 6 ] \
    || fail "the crashed tasks were not retried to done"
dups=$(awk '$1 == "complete" && $4 == "ok" {n[$2]++} END {d = 0; for (k in n) if (n[k] > 1) d++; print d}' "$TESTWORKER_LOG")
oks=$(awk '$1 == "complete" && $4 == "ok"' "$TESTWORKER_LOG" | wc -l)
[ "$dups" = 0 ] || fail "$dups tasks completed more than once"
[ "$oks" = 650 ] || fail "$oks successful completes, expected 650"
grep -q "^complete .* \(fenced\|error\)" "$TESTWORKER_LOG" && fail "a completion was fenced or erred"
# Plain tasks complete in shared statements: far fewer distinct commit times.
shared=$(q "SELECT count(DISTINCT finished_at) FROM pgwake.tasks WHERE stage = 'a' AND status = 'done' AND payload = '{}'")
note "494 plain tasks of stage a finished in $shared distinct commits"
[ "$shared" -le 100 ] || fail "plain tasks were not completed together ($shared commits for 494)"
stop_daemon
[ "$RC" = 0 ] || fail "daemon exit code $RC"
echo ok
