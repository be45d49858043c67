#!/bin/sh
# health_multi: three daemons with distinct hosts share 2,000 tasks; the one
# holding maintenance is SIGKILLed together with its workers mid-run. Another
# takes maintenance over, declares the dead host's workers dead, releases
# their leases (the survivors redo those tasks), and one "Dead Workers
# Detected" message lists them. Every task is completed exactly once.
. "$ROOT/tests/lib/itest.sh"
start_smtp_sink

for h in m1 m2 m3; do
    write_conf $h.conf <<EOF2
[pgwake]
host = $h
log_dir = $T/logs-$h
recount_interval = 0
maintenance_poll = 1s

[alerts]
email_to = ops@example.com
smtp_url = smtp://127.0.0.1:$SMTP_PORT
batch_window = 3s
min_interval = 1s

[stage:alpha]
command = $TESTWORKER
max_workers = 3
idle_timeout = 30s
heartbeat_interval = 500ms
heartbeat_timeout = 3s
lease = 30s
EOF2
done

start_ready m1.conf "$T/daemon-m1.log"
m1=$DAEMON_PID
wait_for_log 'maintenance: this daemon holds it' 10 "$T/daemon-m1.log" || fail "m1 does not hold maintenance"
start_ready m2.conf "$T/daemon-m2.log"
start_ready m3.conf "$T/daemon-m3.log"
q "INSERT INTO pgwake.tasks(stage, payload) SELECT 'alpha', '{\"sleep_ms\": 15}' FROM generate_series(1, 2000)" >/dev/null
wait_sql "SELECT count(*) >= 400 FROM pgwake.tasks WHERE status = 'done'" 60 || fail "no progress"

note "SIGKILL m1 and its workers"
victims=$(q "SELECT string_agg(id, ' ') FROM pgwake.workers WHERE host = 'm1' AND state IN ('starting', 'alive')")
pids=$(q "SELECT string_agg(pid::text, ' ') FROM pgwake.workers WHERE host = 'm1' AND state IN ('starting', 'alive') AND pid IS NOT NULL")
# Frozen first: m1 must not reap and release its workers in the moment
# between their SIGKILL and its own (its releases go out at once).
kill -STOP "$m1"
kill -KILL $pids "$m1"
wait "$m1" 2>/dev/null
sleep 0.3  # a commit already on its way to the server may still land
held=$(q "SELECT count(*) FROM pgwake.tasks t JOIN pgwake.workers w ON w.id = t.lease_owner WHERE w.host = 'm1' AND t.status = 'leased'")
note "m1 workers: $victims (holding $held leases)"
[ -n "$victims" ] || fail "m1 had no workers"

wait_for "grep -q 'maintenance: this daemon holds it' '$T/daemon-m2.log' '$T/daemon-m3.log'" 10 \
    || fail "no survivor took maintenance over"
wait_sql "SELECT count(*) = 2000 AND bool_and(status = 'done') FROM pgwake.tasks" 90 \
    || fail "not all done: $(q "SELECT string_agg(status || ' ' || n, ', ') FROM (SELECT status, count(*) n FROM pgwake.tasks GROUP BY 1) s")"
dups=$(awk '$1 == "complete" && $4 == "ok" {n[$2]++} END {d = 0; for (k in n) if (n[k] > 1) d++; print d}' "$TESTWORKER_LOG")
[ "$dups" = 0 ] || fail "$dups tasks completed more than once"
for w in $victims; do
    [ "$(q "SELECT state FROM pgwake.workers WHERE id = '$w'")" = dead ] || fail "worker $w not declared dead"
done
redone=$(q "SELECT count(*) FROM pgwake.tasks WHERE releases > 0")
note "tasks redone after m1 died: $redone"
[ "$redone" -ge "$held" ] || fail "$redone tasks redone, m1 held $held"

"$PGWAKE" status -c "$T/m2.conf" -d "$TEST_DSN" >"$T/status.out" 2>&1
cat "$T/status.out"
for w in $victims; do
    grep -Eq "^  $w +alpha +m1 +dead .*heartbeat timeout" "$T/status.out" || fail "pgwake status does not show $w dead"
done

wait_for "[ \$(mail_count 'Dead Workers Detected') -ge 1 ]" 15 || fail "no dead-worker mail"
sleep 4
[ "$(mail_count 'Dead Workers Detected')" = 1 ] || fail "$(mail_count 'Dead Workers Detected') dead-worker mails"
for w in $victims; do
    [ "$(mail_count "$w")" = 1 ] || fail "worker $w not in exactly one mail"
done
echo ok
