#!/bin/sh
# trust_memlimit: a task that always blows memory_limit does not loop: its
# first memory stop is refunded, each later one costs an attempt, and it ends
# dead after max_attempts; the counted stops are alerted like any death, and
# the stage never goes FATAL. A well-behaved task of the stage is done.
. "$ROOT/tests/lib/itest.sh"
start_smtp_sink

write_conf pgwake.conf <<EOF2
[pgwake]
host = mem-1
log_dir = $T/logs
recount_interval = 0

$(smtp_alerts)

[stage:hog]
command = $TESTWORKER
max_workers = 1
memory_limit = 48M
heartbeat_interval = 300ms
heartbeat_timeout = 5s
stop_timeout = 300ms
kill_timeout = 500ms
restart_delay = 100ms
max_restarts = 2
EOF2

start_ready pgwake.conf
hog=$(q "SELECT pgwake.enqueue('hog', '{\"alloc_mb\": 120, \"sleep_ms\": 600000}', max_attempts => 2)")
t0=$(date +%s)
wait_sql "SELECT status = 'dead' FROM pgwake.tasks WHERE id = $hog" 60 \
    || fail "the hog is not dead: $(q "SELECT status || ' attempts ' || attempts || ' stops ' || memory_stops FROM pgwake.tasks WHERE id = $hog")"
note "dead after $(( $(date +%s) - t0 )) s"
got=$(q "SELECT attempts || ' ' || memory_stops FROM pgwake.tasks WHERE id = $hog")
[ "$got" = "2 3" ] || fail "attempts and memory stops: $got (want 2 3: one refunded stop, two counted)"
[ "$(grep -c "^claim $hog " "$TESTWORKER_LOG")" = 3 ] || fail "claimed $(grep -c "^claim $hog " "$TESTWORKER_LOG") times"
q "SELECT id || ' ' || reason FROM pgwake.workers WHERE stage = 'hog' ORDER BY started_at" | sed 's/^/# /'
[ "$(q "SELECT count(*) FROM pgwake.workers WHERE stage = 'hog' AND reason LIKE 'memory\_limit again: RSS % MiB above memory_limit 48 MiB'")" = 2 ] \
    || fail "two counted memory stops expected"
counted=$(q "SELECT string_agg(id, ' ') FROM pgwake.workers WHERE stage = 'hog' AND reason LIKE 'memory\_limit again:%'")
for w in $counted; do
    wait_for "[ \$(mail_count '$w') -ge 1 ]" 15 || fail "no alert for $w"
done
first=$(q "SELECT id FROM pgwake.workers WHERE stage = 'hog' ORDER BY started_at LIMIT 1")
[ "$(mail_count "$first ")" = 0 ] || fail "the refunded stop of $first was alerted"
grep -q 'FATAL' "$T/daemon.log" && fail "the stage went FATAL"
ok=$(q "SELECT pgwake.enqueue('hog', '{\"alloc_mb\": 1}')")
wait_sql "SELECT status = 'done' FROM pgwake.tasks WHERE id = $ok" 20 || fail "a small task is not done"
stop_daemon
[ "$RC" = 0 ] || fail "daemon exit code $RC"
echo ok
