#!/bin/sh
# bench/python_worker.sh: the Python worker library (python/pgwake) measured the
# way bench/wake.sh and bench/idle.sh measure the C one, on one throwaway
# cluster, with the C worker (`build/bench/wake worker`) run alongside in every
# configuration so the two compare under the same load:
#   warm wake:  one idle worker (min_workers = max_workers = 1), N tasks INTERVAL
#               ms apart (+-10 %), produced by `wake produce` (the producer of
#               bench/wake.sh); COMMIT returned -> the handler called;
#   cold start: min_workers = 0, idle_timeout = 100ms, COLD_N tasks COLD_INTERVAL
#               ms apart: every task finds no worker; split into its steps
#               (python3 start-up, import, Session, connect + first claim, handler);
#   throughput: claim+complete of pgwake.run with a no-op handler, 1 and 2
#               processes, PGWAKE_CLAIM_BATCH 1 and 10 (TASKS tasks each run);
#   idle:       an idle worker's CPU, wake-ups, memory and queries over SECONDS.
# Markdown on stdout (the body of "## Python worker" in docs/benchmarks.md),
# progress on stderr. Every configuration runs REPEATS times.
#
#   sh bench/python_worker.sh [-n N] [-i INTERVAL_MS] [-c COLD_N] [-I COLD_INTERVAL_MS]
#                             [-t TASKS] [-s SECONDS] [-r REPEATS]
#     defaults: -n 1000 -i 20 -c 100 -I 400 -t 5000 -s 60 -r 2
set -eu

cd "$(dirname "$0")/.."
N=1000
INTERVAL=20
COLD_N=100
COLD_INTERVAL=400
TASKS=5000
SECS=60
REPEAT=2
while getopts n:i:c:I:t:s:r:h opt; do
    case $opt in
    n) N=$OPTARG ;;
    i) INTERVAL=$OPTARG ;;
    c) COLD_N=$OPTARG ;;
    I) COLD_INTERVAL=$OPTARG ;;
    t) TASKS=$OPTARG ;;
    s) SECS=$OPTARG ;;
    r) REPEAT=$OPTARG ;;
    *) sed -n '2,/^set /s/^# \{0,1\}//p' "$0"; [ "$opt" = h ] && exit 0; exit 2 ;;
    esac
done

. bench/lib/daemon.sh
bench_setup python "$PRELOAD"
bench_roles
bench_stmts
LOAD0=$(bench_load)
RESULTS=$W/results
: >"$RESULTS"
# Private copies, like the binaries: others may edit the tree meanwhile.
mkdir -p "$W/src/bench"
cp -r python "$W/src/"
cp bench/python_worker.py "$W/src/bench/"
PY=/usr/bin/python3
PYW="$PY $W/src/bench/python_worker.py"

conf() { # conf FILE COMMAND MIN_WORKERS IDLE_TIMEOUT
    cat <<EOF | bench_conf "$1"
[pgwake]
host = bench-python
log_dir = $W/logs
lock_file = $W/pgwake.lock
http_listen = 127.0.0.1:$HTTP_PORT
worker_dsn = $WORKER_DSN

[stage:bench]
command = $2
min_workers = $3
max_workers = 1
idle_timeout = $4
EOF
}

wait_alive() {
    wait_sql "SELECT count(*) = 1 FROM pgwake.workers WHERE stage = 'bench' AND state = 'alive'" 30 ||
        { echo "the worker did not come up" >&2; tail "$W/daemon.log" "$W/logs/bench.log" >&2; exit 1; }
}

# wake_run RUN KIND LABEL CMD: warm or cold, one worker kind.
wake_run() {
    out=$W/$3.$1.out
    rm -f "$out" "$out.py"
    if [ "$2" = warm ]; then
        conf wake.conf "$4 $out" 1 1h
        bench_start wake.conf
        wait_alive
        sleep 1
        "$WAKE" produce -s bench -n "$N" -i "$INTERVAL" -k 20 -o "$out" -l "$3" -d "$PGTMP_DSN" | collect "$1"
    else
        conf wake.conf "$4 $out" 0 100ms
        bench_start wake.conf
        "$WAKE" produce -s bench -n "$COLD_N" -i "$COLD_INTERVAL" -k 3 -o "$out" -l "$3" -d "$PGTMP_DSN" |
            collect "$1"
        sleep 0.5
    fi
    if [ -f "$out.py" ]; then $PYW split "$out" "$3" | collect "$1"; fi
    bench_stop
    q "DELETE FROM pgwake.tasks; DELETE FROM pgwake.workers" >/dev/null
}

# idle_run RUN WHAT CMD: one idle worker left alone for SECS.
idle_run() {
    conf idle.conf "$3" 1 1h
    bench_start idle.conf
    wait_alive
    pid=$(q "SELECT pid FROM pgwake.workers WHERE stage = 'bench' AND state = 'alive'")
    sleep 3
    stmt_reset
    c0=$(proc_cpu_ns "$pid") x0=$(proc_ctx "$pid")
    sleep "$SECS"
    c1=$(proc_cpu_ns "$pid") x1=$(proc_ctx "$pid")
    anon=$(awk '/^RssAnon:/ { print $2 }' /proc/"$pid"/status)
    threads=$(awk '/^Threads:/ { print $2 }' /proc/"$pid"/status)
    echo "RESULT bench=idle what=$2 secs=$SECS cpu_ns=$((c1 - c0)) ctx=$((x1 - x0)) rss_kb=$(proc_rss_kb "$pid") anon_kb=$anon threads=$threads queries=$(stmt_calls bench_worker)" |
        collect "$1"
    bench_stop
    q "DELETE FROM pgwake.tasks; DELETE FROM pgwake.workers" >/dev/null
}

# throughput RUN WHAT WORKERS BATCH CMD...
throughput() {
    _r=$1 _what=$2 _w=$3 _b=$4
    shift 4
    $PYW throughput "$PGTMP_DSN" "$_w" "$_b" "$TASKS" "$@" |
        sed "s/^RESULT bench=throughput /&what=$_what /" | collect "$_r"
}

bench_log "for scale: python3 start-up and imports"
$PYW spawn 50 | collect 1
for r in $(seq 1 "$REPEAT"); do
    bench_log "run $r of $REPEAT: warm wake ($N tasks $INTERVAL ms apart), Python then C"
    wake_run "$r" warm py_warm "$PYW worker"
    wake_run "$r" warm c_warm "$WAKE worker"
    bench_log "run $r: cold start ($COLD_N tasks $COLD_INTERVAL ms apart), Python then C"
    wake_run "$r" cold py_cold "$PYW worker"
    wake_run "$r" cold c_cold "$WAKE worker"
    bench_log "run $r: throughput ($TASKS tasks a run)"
    for w in 1 2; do
        throughput "$r" python "$w" 1 $PYW noop
        throughput "$r" python "$w" 10 $PYW noop
        throughput "$r" C "$w" 1 "$WAKE" worker /dev/null
    done
    q "DELETE FROM pgwake.tasks; DELETE FROM pgwake.workers" >/dev/null
    bench_log "run $r: idle workers, $SECS s each"
    idle_run "$r" python "$PYW worker $W/idle.out"
    idle_run "$r" C "$WAKE worker $W/idle.out"
done

cat <<'EOF'
The Python worker library (`python/pgwake`, psycopg 3 in its pure-Python form, as
Debian ships it) measured by `bench/python_worker.sh` the way "Wake latency" and "Idle
cost" measure the C one, with the C worker (`bench/wake worker`) run in the same
script, cluster and minutes, so the two compare under the same load. The Python worker
is `bench/python_worker.py worker`: `pgwake.run` with a no-op handler; the times come
from a subclass of its Runner, the library itself is unchanged. Warm: min_workers =
max_workers = 1, tasks produced by `bench/wake produce` (bench/wake.sh's producer);
for Python the end is the handler being called (the claim returned; the task's
transaction begins with the handler's first statement), for C the claim returning. Cold: min_workers = 0 and idle_timeout
100ms, so every task starts a worker.

EOF
$PYW report "$RESULTS"
PYVER=$($PY -c 'import sys, psycopg; print("Python %d.%d.%d, psycopg %s (%s implementation)" % (sys.version_info[:3] + (psycopg.__version__, psycopg.pq.__impl__)))')
cat <<EOF

Built from: $BENCH_REV; run on $(date -u +%Y-%m-%d).
Machine: $(bench_machine); $PYVER; cluster from tests/lib/pgtmp.sh.
Load average before / after: $LOAD0 / $(bench_load) (the machine is shared; each configuration ran $REPEAT times, interleaved).
Rerun: \`sh bench/python_worker.sh -n $N -i $INTERVAL -c $COLD_N -I $COLD_INTERVAL -t $TASKS -s $SECS -r $REPEAT\`
EOF
