#!/bin/sh
# bench/sustain.sh: is a long drain flat? 4 worker processes (pgwake_run,
# claim_batch 1, bench/drain.c -k) drain for SECONDS a stage holding enough
# pending tasks, on a pgwake.tasks that starts with 1,000,000 done tasks;
# durable cluster, autovacuum only (the schema's table settings and
# autovacuum_naptime = 10s, the README's advice). Every minute: tasks/s and
# the CPU of the workers' backends per task; then last minute / first.
#
#   sh bench/sustain.sh [-t SECONDS] [-p PENDING]   (defaults 600, 1600000)
set -eu

cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
SECS=600 PENDING=1600000
while getopts t:p:h opt; do
    case $opt in
    t) SECS=$OPTARG ;;
    p) PENDING=$OPTARG ;;
    *) sed -n '2,/^set /s/^# \{0,1\}//p' "$0" | sed '$d'; [ "$opt" = h ] && exit 0; exit 2 ;;
    esac
done
make -s "$BUILD/bench/drain" "$BUILD/pgwake" >&2
. tests/lib/pgtmp.sh
WPID=
stop_workers() { # the drain parent and its worker processes (they would reconnect forever)
    [ -n "$WPID" ] || return 0
    kill -KILL $(ps -o pid= --ppid "$WPID") "$WPID" 2>/dev/null || true
    wait "$WPID" 2>/dev/null || true
    WPID=
}
cleanup() { stop_workers; pgtmp_stop; }
trap cleanup EXIT
trap 'exit 130' INT TERM
PGTMP_DURABLE=1 pgtmp_start "autovacuum_naptime = 10s"
q() { psql -X -qAt -v ON_ERROR_STOP=1 -d sustain -c "$1"; }
psql -X -q -d postgres -c "CREATE DATABASE sustain"
"$BUILD/pgwake" migrate -d "$PGTMP_DSN dbname=sustain" >&2
t0=$(date +%s)
q "INSERT INTO pgwake.tasks (stage, payload, status, attempts, created_at, finished_at)
   SELECT 'old', jsonb_build_object('n', g), 'done', 1, now() - interval '1 day', now() - interval '1 day'
     FROM generate_series(1, 1000000) g" >/dev/null
q "INSERT INTO pgwake.tasks (stage, payload) SELECT 'drain', jsonb_build_object('n', g)
     FROM generate_series(1, $PENDING) g" >/dev/null
q "VACUUM ANALYZE pgwake.tasks" >/dev/null
q "CHECKPOINT" >/dev/null
echo "loaded 1000000 done and $PENDING pending tasks in $(($(date +%s) - t0)) s" >&2
"$BUILD/bench/drain" -d "$PGTMP_DSN dbname=sustain" -k >/dev/null 2>&1 </dev/null &
WPID=$!
sleep 2
PIDS=$(q "SELECT string_agg(pid::text, ' ') FROM pg_stat_activity
          WHERE datname = 'sustain' AND backend_type = 'client backend' AND pid <> pg_backend_pid()")
ticks() { for p in $PIDS; do sed 's/^.*) //' /proc/"$p"/stat 2>/dev/null; done | awk '{ s += $12 + $13 } END { print s + 0 }'; }
done_n() { q "SELECT count(*) FROM pgwake.tasks WHERE stage = 'drain' AND status = 'done'"; }
avac() { q "SELECT autovacuum_count FROM pg_stat_user_tables WHERE relid = 'pgwake.tasks'::regclass"; }
load0=$(cut -d' ' -f1-3 /proc/loadavg)
hz=$(getconf CLK_TCK)
echo "| minute | tasks/s | backend CPU ms/task | autovacuums so far | done tasks in the table |"
echo "|---:|---:|---:|---:|---:|"
d0=$(done_n) k0=$(ticks) m=1 first= last=
while [ $((m * 60)) -le "$SECS" ]; do
    sleep 60
    d1=$(done_n) k1=$(ticks)
    line=$(awk -v d="$((d1 - d0))" -v k="$((k1 - k0))" -v hz="$hz" 'BEGIN { printf "%.0f %.3f", d / 60, (d > 0 ? k * 1000 / hz / d : 0) }')
    echo "| $m | ${line% *} | ${line#* } | $(avac) | $((1000000 + d1)) |"
    [ -n "$first" ] || first=$line
    last=$line
    d0=$d1 k0=$k1 m=$((m + 1))
done
load1=$(cut -d' ' -f1-3 /proc/loadavg)
stop_workers
echo
awk -v f="$first" -v l="$last" 'BEGIN { split(f, a, " "); split(l, b, " ")
    printf "Last minute / first: tasks/s %.2f, CPU per task %.2f (aim: within 10%%, i.e. 0.90-1.10).\n", b[1] / a[1], b[2] / a[2] }'
echo
echo "Machine: $(nproc) CPUs, $(uname -sr), PostgreSQL $(q 'SHOW server_version'); fsync=$(q 'SHOW fsync'), synchronous_commit=$(q 'SHOW synchronous_commit'), autovacuum_naptime=$(q 'SHOW autovacuum_naptime'); built from commit $(git rev-parse --short HEAD); load average before / after: $load0 / $load1 (shared machine)."
echo "Rerun: \`sh bench/sustain.sh -t $SECS -p $PENDING\`"
