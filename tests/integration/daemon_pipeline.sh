#!/bin/sh
# daemon_pipeline: 1,000 tasks over 3 stages chained by fan-out, max_workers = 3
# each: all done, each completed exactly once; never more than 3 workers of a
# stage alive at once (from registration and end times, which bracket each
# process's life); every worker gone after idle_timeout.
. "$ROOT/tests/lib/itest.sh"

{
    echo "[pgwake]"
    echo "host = pipeline-1"
    echo "log_dir = $T/logs"
    echo "recount_interval = 0"
    for s in a b c; do
        echo
        echo "[stage:$s]"
        echo "command = $TESTWORKER"
        echo "max_workers = 3"
        echo "idle_timeout = 1s"
        echo "heartbeat_interval = 1s"
        echo "heartbeat_timeout = 10s"
        echo "lease = 30s"
    done
} | write_conf pgwake.conf

start_ready pgwake.conf
# 200 a-tasks fan out 2 b-tasks each (400), each b-task fans out 1 c-task (400).
q "INSERT INTO pgwake.tasks(stage, payload)
   SELECT 'a', '{\"fanout\": {\"stage\": \"b\", \"count\": 2,
                  \"payload\": {\"fanout\": {\"stage\": \"c\", \"count\": 1, \"payload\": {}}}}}'
     FROM generate_series(1, 200)" >/dev/null
wait_sql "SELECT count(*) = 1000 AND bool_and(status = 'done') FROM pgwake.tasks" 120 \
    || fail "not all done: $(q "SELECT string_agg(stage || ' ' || status || ' ' || n, ', ') FROM (SELECT stage, status, count(*) n FROM pgwake.tasks GROUP BY 1, 2) s")"

dups=$(awk '$1 == "complete" && $4 == "ok" {n[$2]++} END {d = 0; for (k in n) if (n[k] > 1) d++; print d}' "$TESTWORKER_LOG")
oks=$(awk '$1 == "complete" && $4 == "ok"' "$TESTWORKER_LOG" | wc -l)
[ "$dups" = 0 ] || fail "$dups tasks completed more than once"
[ "$oks" = 1000 ] || fail "$oks successful completes, expected 1000"

wait_sql "SELECT count(*) = 0 FROM pgwake.workers WHERE state IN ('starting', 'alive')" 20 \
    || fail "workers still alive after idle_timeout"
for s in a b c; do
    most=$(q "SELECT max(n) FROM (
                SELECT sum(d) OVER (ORDER BY t, d DESC ROWS UNBOUNDED PRECEDING) AS n FROM (
                  SELECT started_at AS t, 1 AS d FROM pgwake.workers WHERE stage = '$s'
                  UNION ALL
                  SELECT ended_at, -1 FROM pgwake.workers WHERE stage = '$s') e) m")
    note "stage $s: at most $most workers at once, $(q "SELECT count(*) FROM pgwake.workers WHERE stage = '$s'") spawned"
    [ "$most" -le 3 ] || fail "stage $s had $most workers alive at once"
done
[ "$(q "SELECT count(*) FROM pgwake.workers WHERE state = 'dead'")" = 0 ] || fail "a worker died"
[ "$(stage_procs a)$(stage_procs b)$(stage_procs c)" = 000 ] || fail "worker processes left"
stop_daemon
[ "$RC" = 0 ] || fail "daemon exit code $RC"
echo ok
