#!/bin/sh
# bench/burst.sh: what a burst of notifications costs the daemon.
#
# COUNT notifications `pg_notify('pgwake_task', 'bench')`, each in its own
# transaction (NOTIFY folds identical payloads within one transaction), sent by
# `wake burst` from 4 connections in libpq pipeline mode, reach a daemon
# serving stage bench, in two set-ups:
#   idle worker: min_workers = max_workers = 1, the worker running and idle;
#   no worker:   min_workers = 0, max_workers = 4 (the first notification starts one).
# No task exists: every notification is a hint the daemon has to check.
# Measured: the daemon's CPU time (schedstat of its threads; utime+stime ticks
# too) and wake-ups (context switches) from just before the burst until it is
# quiet again, the recounts it sent (calls of pgwake.stage_pending by the
# daemon's own role in pg_stat_statements) and its other queries, the workers'
# claims, and the latency of one real task inserted right after the burst
# (how far behind the burst left the daemon). Each set-up runs REPEATS times.
# Markdown on stdout (the body of "## Notification burst"), progress on stderr.
#
#   sh bench/burst.sh [-n COUNT] [-c CONNS] [-r REPEATS]    defaults: -n 50000 -c 4 -r 2
set -eu

cd "$(dirname "$0")/.."
COUNT=50000
CONNS=4
REPEAT=2
while getopts n:c:r:h opt; do
    case $opt in
    n) COUNT=$OPTARG ;;
    c) CONNS=$OPTARG ;;
    r) REPEAT=$OPTARG ;;
    *) sed -n '2,/^set /s/^# \{0,1\}//p' "$0"; [ "$opt" = h ] && exit 0; exit 2 ;;
    esac
done

. bench/lib/daemon.sh
bench_setup burst "$PRELOAD"
bench_roles
bench_stmts
LOAD0=$(bench_load)
RESULTS=$W/results
: >"$RESULTS"
TICK=$(getconf CLK_TCK)

conf() { # conf MIN MAX
    cat <<EOF
[pgwake]
host = bench-burst
log_dir = $W/logs
lock_file = $W/pgwake.lock
http_listen = 127.0.0.1:$HTTP_PORT
worker_dsn = $WORKER_DSN

[stage:bench]
command = $WAKE worker $W/burst.out
min_workers = $1
max_workers = $2
idle_timeout = 60s
EOF
}

# quiet PID: waits until PID used no CPU for 0.5 s (at most 60 s); prints the
# monotonic time (ms) of its last activity.
quiet() {
    last=$(proc_cpu_ns "$1") last_ms=$(date +%s%3N) still=0 i=0
    while [ $still -lt 5 ] && [ $i -lt 600 ]; do
        sleep 0.1
        i=$((i + 1))
        now=$(proc_cpu_ns "$1")
        if [ "$now" = "$last" ]; then
            still=$((still + 1))
        else
            still=0 last=$now last_ms=$(date +%s%3N)
        fi
    done
    echo "$last_ms"
}

one() { # one RUN SETUP MIN MAX
    run=$1 setup=$2
    conf "$3" "$4" | bench_conf burst.conf
    q "DELETE FROM pgwake.tasks; DELETE FROM pgwake.workers" >/dev/null
    rm -f "$W/burst.out"
    bench_start burst.conf
    if [ "$3" -gt 0 ]; then
        wait_sql "SELECT count(*) = $3 FROM pgwake.workers WHERE stage = 'bench' AND state = 'alive'" 30 ||
            { echo "the worker did not come up" >&2; exit 1; }
    fi
    quiet "$DAEMON_PID" >/dev/null
    stmt_reset
    lines0=$(wc -l <"$W/daemon.log")
    cpu0=$(proc_cpu_ns "$DAEMON_PID") ticks0=$(proc_ticks "$DAEMON_PID") ctx0=$(proc_ctx "$DAEMON_PID")
    t0=$(date +%s%3N)
    send=$("$WAKE" burst -s bench -n "$COUNT" -c "$CONNS" -d "$PGTMP_DSN" | sed -n 's/^RESULT .*seconds=\([0-9.]*\).*/\1/p')
    # One real task right after the burst: how far behind is the daemon?
    sentinel=$("$WAKE" produce -s bench -n 1 -i 1 -o "$W/burst.out" -l sentinel -t 60 -d "$PGTMP_DSN" |
        sed -n 's/^RESULT bench=sentinel .*p50_us=\([0-9.-]*\).*/\1/p')
    t_last=$(quiet "$DAEMON_PID")
    cpu1=$(proc_cpu_ns "$DAEMON_PID") ticks1=$(proc_ticks "$DAEMON_PID") ctx1=$(proc_ctx "$DAEMON_PID")
    lines1=$(wc -l <"$W/daemon.log")
    recounts=$(stmt_calls bench_daemon '%stage_pending%')
    dq=$(stmt_calls bench_daemon)
    claims=$(stmt_calls bench_worker '%pgwake.claim%')
    spawns=$(stmt_calls bench_daemon '%register_worker%')
    others=$(stmt_summary bench_daemon 1)
    bench_stop
    awk -v run="$run" -v s="$setup" -v c0="$cpu0" -v c1="$cpu1" -v k0="$ticks0" -v k1="$ticks1" \
        -v tick="$TICK" -v x0="$ctx0" -v x1="$ctx1" -v t0="$t0" -v tl="$t_last" -v send="$send" \
        -v rc="$recounts" -v dq="$dq" -v cl="$claims" -v sp="$spawns" -v sen="$sentinel" \
        -v lines=$((lines1 - lines0)) -v n="$COUNT" 'BEGIN {
            printf "RESULT run=%s setup=%s cpu_ms=%.1f ticks_ms=%.0f ctx=%d busy_s=%.2f send_s=%s recounts=%d daemon_queries=%d claims=%d spawns=%d sentinel_ms=%.2f log_lines=%d us_per_notify=%.2f\n",
                run, s, (c1 - c0) / 1e6, (k1 - k0) * 1000 / tick, x1 - x0, (tl - t0) / 1000, send,
                rc, dq, cl, sp, sen / 1000, lines, (c1 - c0) / 1e3 / n
        }' | tee -a "$RESULTS" | sed 's/^RESULT /  /' >&2
    echo "  daemon queries: $others" >&2
    echo "$others" >"$W/queries.$setup.$run"
}

for r in $(seq 1 "$REPEAT"); do
    bench_log "run $r of $REPEAT: $COUNT notifications, idle worker"
    one "$r" idle_worker 1 1
    bench_log "run $r of $REPEAT: $COUNT notifications, no worker"
    one "$r" no_worker 0 4
done

MACHINE=$(bench_machine)
LOAD1=$(bench_load)
echo "$COUNT notifications \`pg_notify('pgwake_task', 'bench')\`, one transaction each, from $CONNS connections at once (libpq pipeline mode); no task exists. Figures from just before the burst until the daemon used no CPU for 0.5 s."
echo
echo "| set-up | run | daemon CPU ms (ticks) | µs per notification | wake-ups | burst sent in s | daemon busy s | recounts | daemon queries | worker claims | workers started | a task right after: commit -> claim ms |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
awk '/^RESULT / {
        delete f
        for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
        printf "| %s | %s | %.0f (%.0f) | %.2f | %d | %.2f | %.2f | %d | %d | %d | %d | %.2f |\n",
               f["setup"] == "idle_worker" ? "idle worker (min = max = 1)" : "no worker (min 0, max 4)",
               f["run"], f["cpu_ms"], f["ticks_ms"], f["us_per_notify"], f["ctx"], f["send_s"],
               f["busy_s"], f["recounts"], f["daemon_queries"], f["claims"], f["spawns"], f["sentinel_ms"]
    }' "$RESULTS"
echo
awk '/^RESULT / {
        delete f
        for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
        rate = f["busy_s"] > 0 ? f["recounts"] / f["busy_s"] : 0
        if (n == 0 || rate < lo) lo = rate
        if (n == 0 || rate > hi) hi = rate
        if (n == 0 || f["recounts"] < rmin) rmin = f["recounts"]
        if (n == 0 || f["recounts"] > rmax) rmax = f["recounts"]
        n++
    }
    END {
        printf "Recounts: %d to %d per burst, %.0f to %.0f per second of burst: recounts start at least 10 ms apart, so a burst costs about one recount per 10 ms it lasts (a burst arriving within 50 ms would cost a handful). ", rmin, rmax, lo, hi
        print "Worker claims: every notification raises the stage generation, so each `I` of a worker during the burst is answered with `W` at once and the worker claims again (empty claims here, since no task exists)."
    }' "$RESULTS"
echo
echo "Daemon queries in the last run: idle worker: $(cat "$W/queries.idle_worker.$REPEAT"); no worker: $(cat "$W/queries.no_worker.$REPEAT")."
echo
echo "Built from: $BENCH_REV; run on $(date -u +%Y-%m-%d)."
echo "Machine: $MACHINE."
echo "Load average before / after: $LOAD0 / $LOAD1 (the machine is shared; each set-up ran $REPEAT times)."
echo "Rerun: \`sh bench/burst.sh -n $COUNT -c $CONNS -r $REPEAT\`"
