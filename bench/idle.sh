#!/bin/sh
# bench/idle.sh: what an idle daemon costs. "Idle means idle": no periodic
# query while nothing happens (SPEC section 5).
#
# A daemon serving three stages with the default timers (recount_interval 5m,
# maintenance_poll 5s), started and left alone for SECONDS, in two set-ups:
#   no workers:      min_workers = 0 everywhere (scaled to zero);
#   one idle worker: min_workers = 1 on one stage (the worker heartbeats on its
#                    own connection; the daemon should not notice).
# Measured over the window (after a 3 s settling time): statements the daemon
# sent (pg_stat_statements, by the daemon's own role; and whether its
# backend's state_change moved in pg_stat_activity), its CPU time (schedstat of
# its threads), its wake-ups (voluntary + involuntary context switches of its
# threads), and its memory (VmRSS and VmHWM) and threads at the end. Each
# set-up runs REPEATS times with a fresh daemon. Markdown on stdout (the body
# of "## Idle cost"), progress on stderr.
#
#   sh bench/idle.sh [-s SECONDS] [-r REPEATS] [-W]    defaults: -s 60 -r 2; -W skips the idle-worker set-up
set -eu

cd "$(dirname "$0")/.."
SECS=60
REPEAT=2
WITH_WORKER=1
while getopts s:r:Wh opt; do
    case $opt in
    s) SECS=$OPTARG ;;
    r) REPEAT=$OPTARG ;;
    W) WITH_WORKER=0 ;;
    *) sed -n '2,/^set /s/^# \{0,1\}//p' "$0"; [ "$opt" = h ] && exit 0; exit 2 ;;
    esac
done

. bench/lib/daemon.sh
bench_setup idle "$PRELOAD"
bench_roles
bench_stmts
LOAD0=$(bench_load)
RESULTS=$W/results
: >"$RESULTS"

conf() { # conf MIN_WORKERS_OF_THE_FIRST_STAGE
    cat <<EOF
[pgwake]
host = bench-idle
log_dir = $W/logs
lock_file = $W/pgwake.lock
http_listen = 127.0.0.1:$HTTP_PORT
worker_dsn = $WORKER_DSN

[stage:company_discovery]
command = $WAKE worker $W/idle.out
min_workers = $1
max_workers = 2

[stage:company_research]
command = $WAKE worker $W/idle.out
max_workers = 4

[stage:contact_discovery]
command = $WAKE worker $W/idle.out
max_workers = 2
EOF
}

backend_change() {
    q "SELECT COALESCE(max(state_change)::text, 'none') FROM pg_stat_activity WHERE usename = 'bench_daemon'"
}

one() { # one RUN SETUP MIN
    run=$1 setup=$2
    conf "$3" | bench_conf idle.conf
    q "DELETE FROM pgwake.workers" >/dev/null
    bench_start idle.conf
    if [ "$3" -gt 0 ]; then
        wait_sql "SELECT count(*) = $3 FROM pgwake.workers WHERE state = 'alive'" 30 ||
            { echo "the worker did not come up" >&2; exit 1; }
    fi
    sleep 3
    stmt_reset
    lines0=$(wc -l <"$W/daemon.log")
    bc0=$(backend_change)
    cpu0=$(proc_cpu_ns "$DAEMON_PID") ctx0=$(proc_ctx "$DAEMON_PID")
    sleep "$SECS"
    cpu1=$(proc_cpu_ns "$DAEMON_PID") ctx1=$(proc_ctx "$DAEMON_PID")
    bc1=$(backend_change)
    dq=$(stmt_calls bench_daemon)
    wq=$(stmt_calls bench_worker)
    rss=$(proc_rss_kb "$DAEMON_PID") hwm=$(proc_hwm_kb "$DAEMON_PID")
    anon=$(awk '/^RssAnon:/ { print $2 }' /proc/"$DAEMON_PID"/status)
    file=$(awk '/^RssFile:/ { print $2 }' /proc/"$DAEMON_PID"/status)
    pss=$(awk '/^Pss:/ { print $2 }' /proc/"$DAEMON_PID"/smaps_rollup 2>/dev/null || echo 0)
    dirty=$(awk '/^Private_Dirty:/ { print $2 }' /proc/"$DAEMON_PID"/smaps_rollup 2>/dev/null || echo 0)
    [ -n "${SMAPS_SAVED:-}" ] || { SMAPS_SAVED=1; cp /proc/"$DAEMON_PID"/smaps "$W/smaps" 2>/dev/null || true; }
    threads=$(ls /proc/"$DAEMON_PID"/task | wc -l)
    fds=$(ls /proc/"$DAEMON_PID"/fd | wc -l)
    lines1=$(wc -l <"$W/daemon.log")
    list=$(stmt_summary bench_daemon 1)
    bench_stop
    [ "$bc0" = "$bc1" ] && moved=no || moved=yes
    echo "RESULT run=$run setup=$setup seconds=$SECS daemon_queries=$dq worker_queries=$wq cpu_us=$(( (cpu1 - cpu0) / 1000 )) wakeups=$((ctx1 - ctx0)) rss_kb=$rss hwm_kb=$hwm anon_kb=$anon file_kb=$file pss_kb=${pss:-0} dirty_kb=${dirty:-0} threads=$threads fds=$fds backend_moved=$moved log_lines=$((lines1 - lines0))" |
        tee -a "$RESULTS" | sed 's/^RESULT /  /' >&2
    [ "$dq" = 0 ] || echo "  daemon queries: $list" >&2
}

for r in $(seq 1 "$REPEAT"); do
    bench_log "run $r of $REPEAT: $SECS s idle, no workers"
    one "$r" no_workers 0
    if [ "$WITH_WORKER" = 1 ]; then
        bench_log "run $r of $REPEAT: $SECS s idle, one idle worker"
        one "$r" idle_worker 1
    fi
done

# For scale: a process linked like a worker (libpq) that does nothing.
"$WAKE" pause &
PAUSE_PID=$!
sleep 0.5
BASE_RSS=$(proc_rss_kb "$PAUSE_PID")
BASE_ANON=$(awk '/^RssAnon:/ { print $2 }' /proc/"$PAUSE_PID"/status)
BASE_FILE=$(awk '/^RssFile:/ { print $2 }' /proc/"$PAUSE_PID"/status)
kill "$PAUSE_PID"
wait "$PAUSE_PID" 2>/dev/null || true
MACHINE=$(bench_machine)
LOAD1=$(bench_load)
echo "A daemon serving three stages with the default timers (recount_interval 5m), left alone ${SECS} s after a 3 s settling time; a fresh daemon each run."
echo
echo "| set-up | run | queries by the daemon | its backend active? | daemon CPU ms | wake-ups (context switches) | VmRSS MiB (peak) | of which anonymous / file-backed MiB | PSS MiB | threads | queries by the worker | aim |"
echo "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---|"
awk '/^RESULT / {
        delete f
        for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
        aim = sprintf("0 queries: %s; RSS < 8 MiB: %s", f["daemon_queries"] == 0 ? "met" : "missed",
                      f["rss_kb"] < 8192 ? "met" : "missed")
        printf "| %s | %s | %d | %s | %.2f | %d | %.1f (%.1f) | %.1f / %.1f | %.1f | %d | %d | %s |\n",
               f["setup"] == "no_workers" ? "no workers (all min_workers = 0)" : "one idle worker (min_workers = 1)",
               f["run"], f["daemon_queries"], f["backend_moved"] == "no" ? "no" : "yes",
               f["cpu_us"] / 1000, f["wakeups"], f["rss_kb"] / 1024, f["hwm_kb"] / 1024,
               f["anon_kb"] / 1024, f["file_kb"] / 1024, f["pss_kb"] / 1024, f["threads"], f["worker_queries"], aim
    }' "$RESULTS"
echo
echo "Queries: pg_stat_statements calls by the daemon's own role over the window; \"backend active\": whether its backend's state_change in pg_stat_activity moved. The worker's queries are its heartbeats (heartbeat_interval 30s), on its own connections."
echo
awk -v r="$BASE_RSS" -v a="$BASE_ANON" -v f="$BASE_FILE" 'BEGIN {
    printf "For scale: a process that links libpq and does nothing (`wake pause`) has a VmRSS of %.1f MiB (%.1f anonymous, %.1f file-backed): Debian'"'"'s libpq brings OpenSSL, GnuTLS (through LDAP) and Kerberos, whose pages count in VmRSS although they are shared: most of the daemon'"'"'s VmRSS is this baseline.\n", r / 1024, a / 1024, f / 1024 }'
if [ -f "$W/smaps" ]; then
    echo
    echo "Largest contributors to the daemon's resident memory (first run, from /proc/PID/smaps; file-backed pages of shared libraries are shared with every other process using them):"
    echo
    awk '/^[0-9a-f]+-[0-9a-f]+ / { name = NF >= 6 ? $6 : "[anonymous]"; sub(/.*\//, "", name) }
         /^Rss:/ { rss[name] += $2 }
         END { for (k in rss) if (rss[k] >= 200) printf "%d\t%s\n", rss[k], k }' "$W/smaps" |
        sort -rn | head -n 8 | awk -F '\t' '{ printf "%s%s %.1f MiB", (NR > 1 ? ", " : ""), $2, $1 / 1024 } END { print "" }'
fi
echo
echo "Built from: $BENCH_REV; run on $(date -u +%Y-%m-%d)."
echo "Machine: $MACHINE."
echo "Load average before / after: $LOAD0 / $LOAD1 (the machine is shared)."
echo "Rerun: \`sh bench/idle.sh -s $SECS -r $REPEAT\`"
