#!/bin/sh
# console_metrics: /metrics counts what the database did, exactly.
#  - 0006_task_metrics over a database holding 0005's schema and a live lease:
#    the old lease completes (no started_at, so no run-time sample), fail()
#    records its failure, prune() takes old failure records.
#  - Through the daemon: a task failing on each of its 3 attempts counts 3 in
#    pgwake_task_failures_total and 1 in pgwake_tasks_dead_total; a task that
#    waited 3 s for its not_before and ran 1.2 s lands in
#    pgwake_task_duration_seconds above 2.5 s and in pgwake_task_run_seconds
#    between 1 and 2.5 s.
. "$ROOT/tests/lib/itest.sh"

note "0006 over 0005's schema and data"
ADMIN_DSN=$TEST_DSN
db=$(q "SELECT current_database()")_up6
q "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1
q "CREATE DATABASE $db" >/dev/null || fail "CREATE DATABASE $db"
TEST_DSN="$ADMIN_DSN dbname=$db"
for f in "$ROOT"/sql/000[1-5]_*.sql; do
    psql -X -q -v ON_ERROR_STOP=1 -1 -d "$TEST_DSN" -f "$f" >/dev/null || fail "$(basename "$f") did not apply"
done
w=$(q "SELECT pgwake.register_worker('old', 'old-host', heartbeat_timeout => '1 hour')")
q "SELECT pgwake.enqueue('old', jsonb_build_object('i', i)) FROM generate_series(1, 3) i" >/dev/null
set -- $(q "SELECT id || ' ' || lease_token FROM pgwake.claim('old', '$w')")
"$PGWAKE" migrate -d "$TEST_DSN" >"$T/migrate.out" 2>&1 || fail "migrate failed: $(cat "$T/migrate.out")"
[ "$(cat "$T/migrate.out")" = "applied 0006_task_metrics" ] || fail "migrate said: $(cat "$T/migrate.out")"
[ "$(q "SELECT pgwake.complete($1, $2)")" = t ] || fail "the old lease did not complete"
[ "$(q "SELECT started_at IS NULL FROM pgwake.tasks WHERE id = $1")" = t ] || fail "started_at made up for an old lease"
set -- $(q "SELECT id || ' ' || lease_token FROM pgwake.claim('old', '$w')")
[ "$(q "SELECT started_at IS NOT NULL FROM pgwake.tasks WHERE id = $1")" = t ] || fail "a new claim set no started_at"
[ "$(q "SELECT pgwake.fail($1, $2, 'boom')")" = t ] || fail "fail after the upgrade"
[ "$(q "SELECT pgwake.fail($1, $2, 'boom')")" = f ] || fail "failed twice with one token"
[ "$(q "SELECT count(*) || ' ' || min(stage) FROM pgwake.task_failures WHERE task_id = $1")" = "1 old" ] \
    || fail "failure records: $(q "SELECT * FROM pgwake.task_failures")"
[ "$(q "SELECT has_table_privilege('pgwake_worker', 'pgwake.task_failures', 'INSERT')")" = f ] \
    || fail "pgwake_worker may write task_failures directly"
q "UPDATE pgwake.task_failures SET failed_at = now() - interval '8 days'" >/dev/null
q "SELECT pgwake.prune()" >/dev/null
[ "$(q "SELECT count(*) FROM pgwake.task_failures")" = 0 ] || fail "prune left an 8-day-old failure record"
TEST_DSN=$ADMIN_DSN
q "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null

note "the counters and histograms through the daemon"
PORT=$(free_port)
URL="http://127.0.0.1:$PORT"
write_conf pgwake.conf <<EOF2
[pgwake]
host = metrics-1
log_dir = $T/logs
recount_interval = 0
http_listen = 127.0.0.1:$PORT

[stage:work]
command = $TESTWORKER
max_workers = 2
idle_timeout = 1h
EOF2
start_ready pgwake.conf
# The first scrape starts the count; later ones add what finished since.
curl -s --noproxy '*' --max-time 10 -o /dev/null "$URL/metrics" || fail "no /metrics"
sleep 1
failing=$(q "SELECT pgwake.enqueue('work', '{\"fail\": \"always\"}', max_attempts => 3)")
slow=$(q "SELECT pgwake.enqueue('work', '{\"sleep_ms\": 1200}', not_before => now() + interval '3 seconds')")
wait_sql "SELECT count(*) = 2 FROM pgwake.tasks WHERE id IN ($failing, $slow) AND status IN ('dead', 'done')" 30 \
    || fail "tasks not finished: $(q "SELECT string_agg(id || ':' || status || ':' || attempts, ' ') FROM pgwake.tasks")"
[ "$(q "SELECT status || ' ' || attempts FROM pgwake.tasks WHERE id = $failing")" = "dead 3" ] || fail "the failing task"

metric() { grep -E "^$1 " "$T/metrics" | awk '{print $2}'; }
# Finished rows are counted once they are SETTLE_S (5 s) old.
scrape_ok() {
    curl -s --noproxy '*' --max-time 10 -o "$T/metrics" "$URL/metrics" || return 1
    [ "$(metric 'pgwake_task_run_seconds_count\{stage="work"\}')" = 1 ] &&
        [ "$(metric 'pgwake_task_failures_total\{stage="work"\}')" = 3 ]
}
wait_for scrape_ok 30 || fail "counters: $(grep -E '^pgwake_task' "$T/metrics")"
sleep 6
curl -s --noproxy '*' --max-time 10 -o "$T/metrics" "$URL/metrics" || fail "no /metrics"
curl -s --noproxy '*' --max-time 10 -o "$T/metrics" "$URL/metrics" || fail "no /metrics"
note "$(grep -E '^pgwake_task(s_|_failures|_run_seconds_(sum|count)|_duration_seconds_(sum|count))' "$T/metrics" | tr '\n' ' ')"
[ "$(metric 'pgwake_task_failures_total\{stage="work"\}')" = 3 ] || fail "failures counted twice or lost"
[ "$(metric 'pgwake_tasks_dead_total\{stage="work"\}')" = 1 ] || fail "dead counter"
[ "$(metric 'pgwake_tasks_completed_total\{stage="work"\}')" = 1 ] || fail "completed counter"
run_b() { metric "pgwake_task_run_seconds_bucket\\{stage=\"work\",le=\"$1\"\\}"; }
dur_b() { metric "pgwake_task_duration_seconds_bucket\\{stage=\"work\",le=\"$1\"\\}"; }
[ "$(run_b 1) $(run_b 2.5)" = "0 1" ] || fail "run time not in (1, 2.5]: $(grep run_seconds_bucket "$T/metrics")"
[ "$(dur_b 2.5) $(dur_b 5)" = "0 1" ] || fail "duration not in (2.5, 5]: $(grep duration_seconds_bucket "$T/metrics")"
grep -q '^# TYPE pgwake_task_run_seconds histogram' "$T/metrics" || fail "no run-time histogram type"
grep -q '^# TYPE pgwake_task_failures_total counter' "$T/metrics" || fail "no failures counter type"
stop_daemon
[ "$RC" = 0 ] || fail "the daemon exited $RC"
! grep -q 'Sanitizer' "$T/daemon.log" || fail "sanitizer report: $(grep -A20 Sanitizer "$T/daemon.log" | head -40)"
echo ok
