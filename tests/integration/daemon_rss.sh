#!/bin/sh
# daemon_rss: the daemon does not grow with the work it has done. After a
# warm-up pipeline, a run three times as long (spawns, crashes, exits, leases,
# notifications, HTTP calls) must leave its RSS within 1 MiB of where it was.
. "$ROOT/tests/lib/itest.sh"

PORT=$(free_port)
{
    echo "[pgwake]"; echo "host = rss-1"; echo "log_dir = $T/logs"; echo "recount_interval = 0"
    echo "http_listen = 127.0.0.1:$PORT"
    for s in a b; do
        printf '\n[stage:%s]\ncommand = %s\nmax_workers = 3\nidle_timeout = 300ms\nrestart_delay = 50ms\nmax_restarts = 0\n' "$s" "$TESTWORKER"
    done
} | write_conf pgwake.conf
start_ready pgwake.conf

round() {  # round N: N a-tasks fanning out to b, some crashing once, then scale to zero
    q "INSERT INTO pgwake.tasks(stage, payload)
       SELECT 'a', CASE WHEN i % 25 = 0 THEN '{\"exit\": 1, \"crash_attempts\": 1}'::jsonb
                        ELSE '{\"fanout\": {\"stage\": \"b\", \"count\": 1, \"payload\": {}}}'::jsonb END
         FROM generate_series(1, $1) i" >/dev/null
    for i in 1 2 3 4 5; do curl -s "http://127.0.0.1:$PORT/status" >/dev/null; curl -s "http://127.0.0.1:$PORT/metrics" >/dev/null; done
    wait_sql "SELECT bool_and(status = 'done') FROM pgwake.tasks" 120 || fail "round of $1 not done"
    wait_sql "SELECT count(*) = 0 FROM pgwake.workers WHERE state IN ('starting', 'alive')" 30 || fail "no scale to zero"
    sleep 0.5
}
rss() { awk '/^VmRSS/ {print $2}' "/proc/$DAEMON_PID/status"; }

round 200
r1=$(rss)
round 200; round 200; round 200
r2=$(rss)
spawns=$(q "SELECT count(*) FROM pgwake.workers")
note "RSS after the warm-up: $r1 KiB; after three times as much work ($spawns workers spawned in all): $r2 KiB"
[ $((r2 - r1)) -lt 1024 ] || fail "RSS grew by $((r2 - r1)) KiB"
stop_daemon
[ "$RC" = 0 ] || fail "daemon exit code $RC"
echo ok
