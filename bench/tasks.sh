#!/bin/sh
# bench/tasks.sh: GET /tasks (the operator console's task list) with
# 1,000,000 done tasks. Starts a throwaway PostgreSQL, migrates, loads the
# done tasks over 10 stages plus 2,000 dead and 2,000 pending ones, VACUUM
# ANALYZE, starts build/pgwake and times N requests of each filter from one
# client, a new connection per request as curl and pgwake do (end to end:
# HTTP, the query on the daemon's connection, JSON), and p50 over one
# keep-alive connection. Prints a Markdown table of p50/p99/max in ms, the query plans, and
# the machine.
#
#   sh bench/tasks.sh [-n REQUESTS]     (default 500 per filter)
#   Environment: BUILD (default build), TASKS_DONE (default 1000000).
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD=${BUILD:-build}
N=500
while getopts n:h opt; do
    case $opt in
    n) N=$OPTARG ;;
    *) sed -n '2,12s/^# \{0,1\}//p' "$0"; [ "$opt" = h ] && exit 0; exit 2 ;;
    esac
done
DONE=${TASKS_DONE:-1000000}
. "$ROOT/tests/lib/pgtmp.sh"
W=$(mktemp -d /tmp/pgwake-bench-tasks.XXXXXX)
DPID=
cleanup() { [ -n "$DPID" ] && kill -TERM "$DPID" 2>/dev/null; wait 2>/dev/null; pgtmp_stop; rm -rf "$W"; }
trap cleanup EXIT
pgtmp_start >/dev/null
psql -X -q -d "$PGTMP_DSN dbname=postgres" -c "CREATE DATABASE bench"
DSN="$PGTMP_DSN dbname=bench"
"$BUILD/pgwake" migrate -d "$DSN" >/dev/null
echo "loading $DONE done tasks..." >&2
psql -X -q -d "$DSN" <<SQL
SET session_replication_role = replica;
INSERT INTO pgwake.runs (stage, params) SELECT 's' || (g % 10), '{}' FROM generate_series(1, 1000) g;
INSERT INTO pgwake.tasks (stage, run_id, payload, status, attempts, finished_at, lease_owner, created_at)
SELECT 's' || (g % 10), 1 + g % 1000, '{"n": 1}', 'done', 1, now() - (g || ' ms')::interval, 'bench.1',
       now() - (g || ' ms')::interval
  FROM generate_series(1, $DONE) g;
INSERT INTO pgwake.tasks (stage, payload, status, attempts, last_error, finished_at)
SELECT 's3', '{}', 'dead', 5, 'boom ' || g, now() FROM generate_series(1, 2000) g;
INSERT INTO pgwake.tasks (stage, payload) SELECT 'unserved', '{}' FROM generate_series(1, 2000) g;
INSERT INTO pgwake.tasks (stage, payload, status, attempts, finished_at)
SELECT 's' || (g % 10), '{}', 'done', 1, now() FROM generate_series(1, 10000) g;
VACUUM ANALYZE pgwake.tasks;
SQL
PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$W/pgwake.conf" <<EOF2
[pgwake]
host = bench-tasks
log_dir = $W/logs
recount_interval = 0
http_listen = 127.0.0.1:$PORT

[stage:idle]
command = /bin/true
EOF2
"$BUILD/pgwake" run -c "$W/pgwake.conf" -d "$DSN" >"$W/daemon.log" 2>&1 &
DPID=$!
i=0
until grep -q ' ready: ' "$W/daemon.log"; do
    i=$((i + 1)); [ $i -lt 200 ] || { cat "$W/daemon.log"; exit 1; }; sleep 0.1
done
MID=$(psql -X -qAt -d "$DSN" -c "SELECT max(id) / 2 FROM pgwake.tasks")
[ -n "${TASKS_HOLD:-}" ] && { echo "port $PORT dsn $DSN"; sleep "$TASKS_HOLD"; }
/usr/bin/python3 - "$PORT" "$N" "$MID" <<'PY'
import http.client, json, sys, time
port, n, mid = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
filters = ["", "state=done", "state=dead", "state=pending", "stage=s3", "stage=s3&state=dead",
           "stage=s7&state=done", "run=500", "before=" + mid, "stage=s7&before=" + mid,
           "state=done&limit=1000", "stage=nope"]
def timed(path, keep):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    times = []
    for i in range(n + 20):
        if not keep:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        t0 = time.perf_counter()
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
        dt = (time.perf_counter() - t0) * 1000
        if not keep:
            c.close()
        if r.status != 200:
            sys.exit("%s: HTTP %d %s" % (path, r.status, body[:200]))
        if i >= 20:
            times.append(dt)
    times.sort()
    return times, len(json.loads(body)["tasks"])

def p(times, q):
    return times[min(len(times) - 1, int(len(times) * q))]

print("| filter | rows | p50 ms | p99 ms | max ms | keep-alive p50 ms |")
print("|---|---|---|---|---|---|")
for f in filters:
    path = "/tasks?" + f
    t, rows = timed(path, False)
    k, _ = timed(path, True)
    print("| `%s` | %d | %.2f | %.2f | %.2f | %.2f |" % (f or "(none)", rows, p(t, .5), p(t, .99), t[-1], p(k, .5)))
PY
echo
echo "plans (the list query with literal filters):"
for w in "status = 'dead'" "stage = 's3' AND status = 'dead'" "stage = 's7'" "status = 'pending'"; do
    psql -X -qAt -d "$DSN" -c "EXPLAIN (COSTS OFF) SELECT id FROM pgwake.tasks t WHERE $w ORDER BY id DESC LIMIT 51" \
        | sed "s/^/    [$w] /"
done
echo
echo "machine: $(nproc) cores, $(uname -sr), PostgreSQL $(psql -X -qAt -d "$DSN" -c 'SHOW server_version')"
