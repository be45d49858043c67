#!/bin/sh
# health_total_cap: max_workers_total caps a stage across daemons (enforced
# when a worker registers; a refused registration waits restart_delay), and an
# SMTP server that never answers does not slow spawning down.
. "$ROOT/tests/lib/itest.sh"

# A peer that accepts connections and never says a word.
/usr/bin/python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(16)
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
conns = []
while True:
    c, _ = s.accept(); conns.append(c)
' "$T/silent.port" &
DAEMON_PIDS="$DAEMON_PIDS $!"
wait_for "[ -s '$T/silent.port' ]" 10 || fail "silent peer did not start"
silent=$(cat "$T/silent.port")

for h in cap1 cap2; do
    write_conf $h.conf <<EOF2
[pgwake]
host = $h
log_dir = $T/logs-$h
recount_interval = 0

[alerts]
email_to = ops@example.com
smtp_url = smtp://127.0.0.1:$silent

[stage:alpha]
command = $TESTWORKER
max_workers = 3
max_workers_total = 4
idle_timeout = 30s
restart_delay = 200ms

[stage:crashy]
command = $TESTWORKER --exit-code 1
max_restarts = 1
restart_delay = 100ms
EOF2
done
start_ready cap1.conf "$T/daemon-cap1.log"
start_ready cap2.conf "$T/daemon-cap2.log"

note "a FATAL alert goes to the silent SMTP peer"
"$PGWAKE" enqueue -d "$TEST_DSN" crashy '{}' >/dev/null
wait_sql "SELECT count(*) >= 1 FROM pgwake.stage_state WHERE stage = 'crashy' AND state = 'fatal'" 20 \
    || fail "crashy not FATAL"

note "600 tasks: both daemons would run 3 workers each; the cap is 4"
t0=$(date +%s%N)
q "INSERT INTO pgwake.tasks(stage, payload) SELECT 'alpha', '{\"sleep_ms\": 20}' FROM generate_series(1, 600)" >/dev/null
wait_sql "SELECT count(*) >= 1 FROM pgwake.tasks WHERE stage = 'alpha' AND status = 'done'" 10 \
    || fail "no task done while the SMTP peer hangs"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
note "first task done $ms ms after the insert"
wait_sql "SELECT count(*) = 600 AND bool_and(status = 'done') FROM pgwake.tasks WHERE stage = 'alpha'" 90 \
    || fail "alpha not done"
most=$(q "SELECT max(n) FROM (
            SELECT sum(d) OVER (ORDER BY t, d DESC ROWS UNBOUNDED PRECEDING) AS n FROM (
              SELECT started_at AS t, 1 AS d FROM pgwake.workers WHERE stage = 'alpha'
              UNION ALL
              SELECT COALESCE(ended_at, 'infinity'), -1 FROM pgwake.workers WHERE stage = 'alpha') e) m")
note "at most $most alpha workers registered at once across both daemons"
[ "$most" -le 4 ] || fail "$most workers at once, cap 4"
grep -q 'max_workers_total (4) reached' "$T/daemon-cap1.log" "$T/daemon-cap2.log" || fail "the cap never refused"
echo ok
