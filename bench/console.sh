#!/bin/sh
# bench/console.sh: the status page and console with 100,000 tasks and 200
# live workers (issue 14: "the page stays usable ... paged, no full-table
# reads per refresh"). Starts a throwaway PostgreSQL, loads TASKS tasks
# (75 % done over 10 stages and 1,000 runs; 20 % pending in stage `held`,
# behind its one worker's hour-long task: a backlog past /status's count
# cap; 5 % dead with an error), 100 dead workers with their last lines and
# 20,000 ended ones (a week of short-lived workers), then build/pgwake with
# WORKERS idle test workers of one stage. Measures:
#   - every call one page refresh makes (the page, /status, /runs, /tasks,
#     the log tail, /deaths, /trends), REQUESTS times each from one client, a
#     new connection per request: p50 / p99 / max ms and the body's size;
#   - rows read from pgwake.tasks, runs and workers per refresh
#     (pg_stat_user_tables before and after REFRESHES refreshes, idle
#     otherwise): the proof that no refresh reads a whole table;
#   - with chromium and python3-websocket: the page in headless chromium, from
#     navigation to every worker row and the first task page drawn, then
#     SECONDS of it refreshing every 2 s: script and layout time per second,
#     JS heap, DOM nodes (Performance.getMetrics).
# Markdown on stdout (the body of "## Operator console with 100k tasks and
# 200 workers" in docs/benchmarks.md), progress on stderr.
#
#   sh bench/console.sh [-t TASKS] [-w WORKERS] [-n REQUESTS] [-R REFRESHES] [-s SECONDS]
#     defaults: -t 100000 -w 200 -n 200 -R 50 -s 20
#   Environment: BUILD (default build).
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD=${BUILD:-build}
TASKS=100000 WORKERS=200 N=200 REFRESHES=50 SECS=20
while getopts t:w:n:R:s:h opt; do
    case $opt in
    t) TASKS=$OPTARG ;;
    w) WORKERS=$OPTARG ;;
    n) N=$OPTARG ;;
    R) REFRESHES=$OPTARG ;;
    s) SECS=$OPTARG ;;
    *) sed -n '2,/^set /s/^# \{0,1\}//p' "$0" | sed '$d'; [ "$opt" = h ] && exit 0; exit 2 ;;
    esac
done
PY=/usr/bin/python3
. "$ROOT/tests/lib/pgtmp.sh"
W=$(mktemp -d /tmp/pgwake-bench-console.XXXXXX)
DPID= CPID=
cleanup() {
    [ -n "$CPID" ] && kill "$CPID" 2>/dev/null
    [ -n "$DPID" ] && kill -TERM "$DPID" 2>/dev/null
    wait 2>/dev/null
    pgtmp_stop
    rm -rf "$W"
}
trap cleanup EXIT
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
# Each test worker holds two connections (its own and its heartbeat thread's).
pgtmp_start "" "max_connections = $((2 * WORKERS + 100))" >/dev/null
psql -X -q -d "$PGTMP_DSN dbname=postgres" -c "CREATE DATABASE bench"
DSN="$PGTMP_DSN dbname=bench"
"$BUILD/pgwake" migrate -d "$DSN" >/dev/null
echo "loading $TASKS tasks and 20,100 ended workers..." >&2
psql -X -q -v ON_ERROR_STOP=1 -d "$DSN" <<SQL
SET session_replication_role = replica;
INSERT INTO pgwake.runs (stage, params) SELECT 's' || (g % 10), '{}' FROM generate_series(1, 1000) g;
INSERT INTO pgwake.tasks (stage, run_id, payload, status, attempts, created_at, started_at, finished_at)
SELECT 's' || (g % 10), 1 + g % 1000, '{"n": 1}', 'done', 1, now() - (g || ' s')::interval,
       now() - (g || ' s')::interval, now() - (g || ' s')::interval + interval '1 s'
  FROM generate_series(1, $TASKS * 75 / 100) g;
INSERT INTO pgwake.tasks (stage, payload, priority) VALUES ('held', '{"sleep_ms": 3600000}', 1);
INSERT INTO pgwake.tasks (stage, payload)
SELECT 'held', jsonb_build_object('n', g) FROM generate_series(1, $TASKS * 20 / 100 - 1) g;
INSERT INTO pgwake.tasks (stage, payload, status, attempts, last_error, finished_at)
SELECT 's3', '{}', 'dead', 5, 'boom ' || g || E'\n' || repeat('trace line ', 20), now()
  FROM generate_series(1, $TASKS * 5 / 100) g;
INSERT INTO pgwake.workers (id, stage, host, pid, state, reason, started_at, ended_at, alerted_at, last_lines)
SELECT 'gone-' || g, 's' || (g % 10), 'other-host', 1000 + g, 'dead', 'exit 1', now() - interval '1 h',
       now() - (g || ' min')::interval, now(), repeat('a line the worker printed' || E'\n', 20)
  FROM generate_series(1, 100) g;
INSERT INTO pgwake.workers (id, stage, host, pid, state, reason, started_at, ended_at)
SELECT 'old-' || g, 's' || (g % 10), 'other-host', 1000 + g, 'exited', NULL, now() - interval '2 days',
       now() - interval '1 day' FROM generate_series(1, 20000) g;
VACUUM ANALYZE;
SQL
PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$W/pgwake.conf" <<EOF2
[pgwake]
host = bench-console
log_dir = $W/logs
lock_file = $W/pgwake.lock
recount_interval = 0
http_listen = 127.0.0.1:$PORT

[stage:busy]
command = sh -c 'echo "worker up"; exec "\$0"' $ROOT/$BUILD/workers/testworker
min_workers = $WORKERS
max_workers = $WORKERS
idle_timeout = 1h

[stage:held]
command = $ROOT/$BUILD/workers/testworker
max_workers = 1
EOF2
"$BUILD/pgwake" run -c "$W/pgwake.conf" -d "$DSN" >"$W/daemon.log" 2>&1 &
DPID=$!
echo "starting $WORKERS workers..." >&2
i=0
until [ "$(psql -X -qAt -d "$DSN" -c "SELECT count(*) FROM pgwake.workers WHERE state = 'alive'")" -gt "$WORKERS" ]; do
    i=$((i + 1)); [ $i -lt 1200 ] || { tail -20 "$W/daemon.log" >&2; exit 1; }; sleep 0.1
done
sleep 2
TASKS_NOW=$(psql -X -qAt -d "$DSN" -c "SELECT count(*) FROM pgwake.tasks")

CHROME=$(command -v chromium || command -v chromium-browser || true)
if [ -n "$CHROME" ] && $PY -c 'import websocket' 2>/dev/null; then
    "$CHROME" --headless --no-sandbox --disable-gpu --no-first-run --window-size=1280,1600 \
        --disable-background-networking --disable-component-update --disable-sync \
        --user-data-dir="$W/chrome" --remote-debugging-port=0 about:blank >/dev/null 2>&1 &
    CPID=$!
    i=0
    until [ -s "$W/chrome/DevToolsActivePort" ]; do
        i=$((i + 1)); [ $i -lt 200 ] || { echo "chromium opened no DevTools port" >&2; exit 1; }; sleep 0.1
    done
    CDP_PORT=$(head -1 "$W/chrome/DevToolsActivePort")
else
    CDP_PORT=
    echo "no chromium or python3-websocket: the browser part is skipped" >&2
fi

echo "measuring..." >&2
$PY "$ROOT/bench/console.py" --port "$PORT" --dsn "$DSN" --requests "$N" --refreshes "$REFRESHES" \
    --workers "$WORKERS" --tasks "$TASKS_NOW" --seconds "$SECS" ${CDP_PORT:+--cdp-port "$CDP_PORT"}
echo
echo "Built from: commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'); run on $(date -u +%F)."
echo "Machine: $(nproc) CPUs, $(uname -sr), PostgreSQL $(psql -X -qAt -d "$DSN" -c 'SHOW server_version')${CDP_PORT:+, $("$CHROME" --version 2>/dev/null)}."
echo "Load average before / after: $LOAD_BEFORE / $(cut -d' ' -f1-3 /proc/loadavg) (shared machine)."
echo "Rerun: \`sh bench/console.sh -t $TASKS -w $WORKERS -n $N -R $REFRESHES -s $SECS\`"
