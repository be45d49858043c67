#!/bin/sh
# bench/polling.sh: the polling baseline - what pgwake replaces - measured on
# the same machine and cluster, side by side with pgwake's wake path.
#
#   poll:        STAGES workers polling pgwake.claim() every second (no LISTEN,
#                no daemon; bench/polling.c `poll`), one per stage; TASKS tasks
#                spaced randomly (uniform 0.5-1.5 x MEAN ms, round robin over
#                the stages); COMMIT returned -> claim returned.
#   poll idle:   the same pollers with nothing to do for IDLE seconds: queries,
#                WAL and backend CPU they cost.
#   pgwake idle: a daemon with STAGES idle workers (`polling worker`, default
#                heartbeat_interval 30s) for IDLE seconds: the same figures.
#   listen:      a daemon with one warm idle worker (min_workers = max_workers
#                = 1, `polling worker`), the same TASKS and spacing:
#                COMMIT returned -> claim returned (bench/wake.sh measures this
#                in detail; this is the minimal twin for the side by side).
# The table compares polling with this listen run and with the "warm wake"
# and "cold start" rows of bench/wake.sh ($BENCH_OUT/wake.md when run by
# bench/run.sh, else the "## Wake latency" section of docs/benchmarks.md).
# Each part runs REPEATS times. Markdown on stdout: the section "## Polling
# baseline" of docs/benchmarks.md (bench/report.sh puts it there); also kept
# in bench/out/polling.md. Raw samples (ms, one a line, every run):
# bench/out/polling.txt and bench/out/pgwake-listen-warm.txt, which
# bench/plot.sh draws. Progress on stderr.
#
#   sh bench/polling.sh [-n TASKS] [-c STAGES] [-m MEAN_MS] [-s IDLE_SECONDS] [-r REPEATS]
#     defaults: -n 300 -c 4 -m 400 -s 60 -r 2
#   Environment: BUILD (default build); BENCH_SRC=head or a commit: measure
#   that commit (built in /tmp/pgwake-bench-src-REV), so others' unfinished
#   work in src/ stays out of the figures; BENCH_SRC_DIR=DIR: the sources in
#   DIR; KEEP_BENCH_DIR=1 keeps the run's folder (configs, daemon log);
#   BENCH_OUT_DIR: where the raw samples and the Markdown copy go (bench/out).
set -eu

cd "$(dirname "$0")/.."
TASKS=300
STAGES=4
MEAN=400
IDLE=60
REPEAT=2
while getopts n:c:m:s:r:h opt; do
    case $opt in
    n) TASKS=$OPTARG ;;
    c) STAGES=$OPTARG ;;
    m) MEAN=$OPTARG ;;
    s) IDLE=$OPTARG ;;
    r) REPEAT=$OPTARG ;;
    *) sed -n '2,/^set /s/^# \{0,1\}//p' "$0"; [ "$opt" = h ] && exit 0; exit 2 ;;
    esac
done

OUTDIR=${BENCH_OUT_DIR:-bench/out} # raw samples and a copy of the Markdown
mkdir -p "$OUTDIR"

. bench/lib/daemon.sh
bench_setup polling -b polling "$PRELOAD"
POLLING=$W/bin/polling
RERUN_ENV=
[ "${BENCH_SRC:-tree}" != tree ] && RERUN_ENV="BENCH_SRC=$BENCH_SRC "
# Roles of their own, so pg_stat_statements tells who sent what; the
# workers' role has no connection limit: -c may ask for any number of workers.
bench_roles -1
bench_stmts
q "CREATE ROLE bench_poller LOGIN;
   GRANT USAGE ON SCHEMA pgwake TO bench_poller;
   GRANT ALL ON ALL TABLES IN SCHEMA pgwake TO bench_poller;
   GRANT ALL ON ALL SEQUENCES IN SCHEMA pgwake TO bench_poller;
   GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA pgwake TO bench_poller" >/dev/null
POLLER_DSN="host=$PGTMP_DIR port=$PGPORT user=bench_poller dbname=postgres"

MACHINE=$(bench_machine)
LOAD0=$(bench_load)
RESULTS=$W/results
: >"$RESULTS"
TICK=$(getconf CLK_TCK)

conf() { # conf NAME: [pgwake] plus the stage lines on stdin, into $W/NAME
    {
        cat <<EOF
[pgwake]
host = bench-polling
log_dir = $W/logs
lock_file = $W/pgwake.lock
http_listen = 127.0.0.1:$HTTP_PORT
worker_dsn = $WORKER_DSN

EOF
        cat
    } | bench_conf "$1"
}

wal_lsn() { q "SELECT pg_current_wal_lsn()"; }
wal_bytes() { q "SELECT pg_wal_lsn_diff('$2', '$1')::bigint"; }

# idle_window RUN SETUP ROLE WORKERS: IDLE seconds of ROLE's statements, WAL,
# ROLE's backends' CPU, and the daemon's statements.
idle_window() {
    _be=$(backend_pids "$3")
    stmt_reset
    _l0=$(wal_lsn) _b0=$(proc_ticks $_be) _t0=$(date +%s%N)
    sleep "$IDLE"
    _l1=$(wal_lsn) _b1=$(proc_ticks $_be) _t1=$(date +%s%N)
    echo "RESULT run=$1 bench=$2 workers=$4 wall_ns=$((_t1 - _t0)) queries=$(stmt_calls "$3") daemon_queries=$(stmt_calls bench_daemon) wal_bytes=$(wal_bytes "$_l0" "$_l1") backend_ticks=$((_b1 - _b0)) tick=$TICK" |
        tee -a "$RESULTS" | sed 's/^RESULT /  /' >&2
}

for r in $(seq 1 "$REPEAT"); do
    bench_log "run $r of $REPEAT: polling every 1 s, $STAGES pollers, $TASKS tasks ~$MEAN ms apart"
    "$POLLING" poll -n "$TASKS" -c "$STAGES" -m "$MEAN" -o "$W/poll.$r.txt" -d "$POLLER_DSN" | collect "$r"
    q "DELETE FROM pgwake.tasks; DELETE FROM pgwake.workers" >/dev/null

    bench_log "run $r: $STAGES pollers idle, $IDLE s"
    "$POLLING" idle -c "$STAGES" -t $((IDLE + 4)) -d "$POLLER_DSN" >"$W/pollidle.out" &
    BG_PID=$!
    sleep 3
    idle_window "$r" poll_idle bench_poller "$STAGES"
    wait "$BG_PID" || true
    BG_PID=
    collect "$r" <"$W/pollidle.out"
    q "DELETE FROM pgwake.workers" >/dev/null

    bench_log "run $r: pgwake, $STAGES idle workers (heartbeat_interval 30s), $IDLE s"
    conf idle.conf <<EOF
[stage:idle]
command = $POLLING worker
min_workers = $STAGES
max_workers = $STAGES
idle_timeout = 1h
EOF
    bench_start idle.conf
    wait_sql "SELECT count(*) = $STAGES FROM pgwake.workers WHERE stage = 'idle' AND state = 'alive'" 30 ||
        { echo "the idle workers did not come up" >&2; tail "$W/daemon.log" >&2; exit 1; }
    sleep 3
    idle_window "$r" pgwake_idle bench_worker "$STAGES"
    bench_stop
    q "DELETE FROM pgwake.workers" >/dev/null

    bench_log "run $r: pgwake, one warm idle worker, $TASKS tasks ~$MEAN ms apart"
    conf listen.conf <<EOF
[stage:listen]
command = $POLLING worker
min_workers = 1
max_workers = 1
idle_timeout = 1h
EOF
    bench_start listen.conf
    wait_sql "SELECT count(*) = 1 FROM pgwake.workers WHERE stage = 'listen' AND state = 'alive'" 30 ||
        { echo "the warm worker did not come up" >&2; tail "$W/daemon.log" >&2; exit 1; }
    "$POLLING" listen -s listen -n "$TASKS" -m "$MEAN" -k 5 -o "$W/listen.$r.txt" -d "$PGTMP_DSN" | collect "$r"
    bench_stop
    q "DELETE FROM pgwake.tasks; DELETE FROM pgwake.workers" >/dev/null
done
LOAD1=$(bench_load)
cat "$W"/poll.*.txt >"$OUTDIR/polling.txt"
cat "$W"/listen.*.txt >"$OUTDIR/pgwake-listen-warm.txt"
cp "$RESULTS" "$OUTDIR/polling-results.txt"

# bench/wake.sh's figures: its Markdown of this `make bench` run, else the
# section of docs/benchmarks.md. Rows "**warm wake**" and "**cold start**":
# columns p50 and p99 (3rd and 5th cells).
WAKE_MD=
[ -n "${BENCH_OUT:-}" ] && [ -s "$BENCH_OUT/wake.md" ] && WAKE_MD=$BENCH_OUT/wake.md && WAKE_FROM="this run of bench/wake.sh"
if [ -z "$WAKE_MD" ] && [ -f docs/benchmarks.md ] && grep -q '^## Wake latency' docs/benchmarks.md; then
    awk '/^## / { on = ($0 == "## Wake latency") } on' docs/benchmarks.md >"$W/wake.md"
    WAKE_MD=$W/wake.md
    WAKE_FROM="the \"Wake latency\" section of docs/benchmarks.md (bench/wake.sh)"
fi
wake_row() { # wake_row PATTERN: "p50 p99" of the first row starting with PATTERN
    [ -n "$WAKE_MD" ] || return 0
    awk -F '|' -v pat="$1" 'index($0, pat) == 1 { gsub(/ /, "", $3); gsub(/ /, "", $5); print $3, $5; exit }' "$WAKE_MD"
}
WARM=$(wake_row '| **warm wake**')
COLD=$(wake_row '| **cold start**')

{
echo "## Polling baseline"
echo
echo "The usual alternative to pgwake: a worker that calls \`pgwake.claim()\` every second and sleeps when it finds nothing (no LISTEN, no daemon; \`bench/polling.c poll\`), against pgwake waking an idle worker (\`bench/polling.c listen\`: a daemon, one warm worker woken over the wake fd). Same cluster, same task spacing ($TASKS tasks per run, spaced uniformly at random in 0.5-1.5 x $MEAN ms; the $STAGES pollers have a stage each, served round robin, so a poller gets a task every $((MEAN * STAGES / 1000)).$(( (MEAN * STAGES % 1000) / 100 )) s on average and most tasks find it asleep). Latency: COMMIT of the INSERT returned -> claim returned in the worker (CLOCK_REALTIME, same machine)."
echo
awk -v reps="$REPEAT" -v warm="$WARM" -v cold="$COLD" -v from="${WAKE_FROM:-}" '
    /^RESULT / {
        delete f
        for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
        k = f["bench"]; r = f["run"]
        if (k == "poll" || k == "listen_warm" || k == "listen_warm_from_send") {
            p50[k, r] = f["p50_us"] / 1000; p90[k, r] = f["p90_us"] / 1000
            p99[k, r] = f["p99_us"] / 1000; mx[k, r] = f["max_us"] / 1000; cnt[k, r] = f["n"]
            lost[k, r] = f["lost"]
        } else if (k == "poll_idle" || k == "pgwake_idle") {
            s = f["wall_ns"] / 1e9; nw = f["workers"]
            qps[k, r] = f["queries"] / s / nw; dq[k, r] = f["daemon_queries"] / s / nw
            wal[k, r] = f["wal_bytes"] / s / nw; cpu[k, r] = f["backend_ticks"] / f["tick"] / s * 100 / nw
        } else next
        runs[k] = runs[k] " " r
    }
    function worst(k,    a, i, b, nr) {
        nr = split(runs[k], a, " "); b = a[1]
        for (i = 2; i <= nr; i++) if (p99[k, a[i]] > p99[k, b]) b = a[i]
        return b
    }
    function spread(arr, k, fmt,    a, i, nr, lo, hi, v) {
        nr = split(runs[k], a, " ")
        for (i = 1; i <= nr; i++) {
            v = arr[k, a[i]]
            if (i == 1 || v < lo) lo = v
            if (i == 1 || v > hi) hi = v
        }
        return nr > 1 ? sprintf(fmt "-" fmt, lo, hi) : sprintf(fmt, lo)
    }
    function mean(arr, k,    a, i, nr, s) {
        nr = split(runs[k], a, " "); s = 0
        for (i = 1; i <= nr; i++) s += arr[k, a[i]]
        return nr ? s / nr : 0
    }
    function row(label, k,    r) {
        if (!(k in runs)) return
        r = worst(k)
        printf "| %s | %d | %.2f | %.2f | %.2f | %.2f | %s / %s |\n", label, cnt[k, r], p50[k, r], p90[k, r],
               p99[k, r], mx[k, r], spread(p50, k, "%.2f"), spread(p99, k, "%.2f")
    }
    function ratio(a, b) { return b > 0 ? sprintf("%.0f x", a / b) : a > 0 ? "pgwake: none in the window" : "-" }
    END {
        print "| COMMIT -> claim returned | n | p50 ms | p90 ms | p99 ms | max ms | all runs: p50 / p99 ms |"
        print "|---|---:|---:|---:|---:|---:|---|"
        row("**polling every 1 s** (claim, sleep 1 s when empty)", "poll")
        row("**pgwake, warm idle worker** (min_workers = 1: NOTIFY -> daemon -> W on the wake fd -> claim)", "listen_warm")
        row("&nbsp;&nbsp;same, from the INSERT being sent (never negative; the COMMIT is seen returning late when the producer is scheduled late)", "listen_warm_from_send")
        split(warm, wm, " "); split(cold, cm, " ")
        if (warm != "") printf "| pgwake warm wake, from %s | | %s | | %s | | |\n", from, wm[1], wm[2]
        if (cold != "") printf "| pgwake cold start (no worker running: register, fork, exec, connect, claim), from %s | | %s | | %s | | |\n", from, cm[1], cm[2]
        print ""
        rp = worst("poll"); rl = worst("listen_warm")
        print "Side by side (runs shown above; the ratio is polling / pgwake):"
        print ""
        print "| | polling every 1 s | pgwake | polling / pgwake |"
        print "|---|---:|---:|---:|"
        if (("poll" in runs) && ("listen_warm" in runs)) {
            printf "| p50 latency, warm idle worker (this script) | %.1f ms | %.2f ms | %s |\n", p50["poll", rp], p50["listen_warm", rl], ratio(p50["poll", rp], p50["listen_warm", rl])
            printf "| p99 latency, warm idle worker (this script) | %.1f ms | %.2f ms | %s |\n", p99["poll", rp], p99["listen_warm", rl], ratio(p99["poll", rp], p99["listen_warm", rl])
        }
        if (warm != "" && ("poll" in runs)) {
            printf "| p50 latency, warm (bench/wake.sh) | %.1f ms | %s ms | %s |\n", p50["poll", rp], wm[1], ratio(p50["poll", rp], wm[1])
            printf "| p99 latency, warm (bench/wake.sh) | %.1f ms | %s ms | %s |\n", p99["poll", rp], wm[2], ratio(p99["poll", rp], wm[2])
        }
        if (cold != "" && ("poll" in runs)) {
            printf "| p50 latency, pgwake cold start (no worker running) vs a polling worker already running | %.1f ms | %s ms | %s |\n", p50["poll", rp], cm[1], ratio(p50["poll", rp], cm[1])
            printf "| p99 latency, same | %.1f ms | %s ms | %s |\n", p99["poll", rp], cm[2], ratio(p99["poll", rp], cm[2])
        }
        if (("poll_idle" in runs) && ("pgwake_idle" in runs)) {
            qp = mean(qps, "poll_idle"); qw = mean(qps, "pgwake_idle")
            qd = mean(dq, "pgwake_idle")
            printf "| idle: queries per second per worker (pg_stat_statements; runs: %s / %s) | %.3f | %.3f (+ the daemon: %.3f per worker) | %s |\n",
                   spread(qps, "poll_idle", "%.3f"), spread(qps, "pgwake_idle", "%.3f"), qp, qw, qd, ratio(qp, qw + qd)
            wp = mean(wal, "poll_idle"); ww = mean(wal, "pgwake_idle")
            printf "| idle: WAL bytes per second per worker (runs: %s / %s) | %.0f | %.0f | %s |\n",
                   spread(wal, "poll_idle", "%.0f"), spread(wal, "pgwake_idle", "%.0f"), wp, ww, ratio(wp, ww)
            cp = mean(cpu, "poll_idle"); cw = mean(cpu, "pgwake_idle")
            printf "| idle: backend CPU per worker, %% of a core (10 ms ticks: coarse) | %.3f | %.3f | %s |\n", cp, cw, ratio(cp, cw)
        }
        if (!(warm != "")) print "\n(bench/wake.sh'"'"'s figures were not available: neither $BENCH_OUT/wake.md nor a \"## Wake latency\" section in docs/benchmarks.md.)"
    }' "$RESULTS"
echo
echo "Idle: $STAGES pollers with nothing to claim, against a daemon with $STAGES idle workers (\`polling worker\`, default heartbeat_interval 30s: a worker's only query while idle is its heartbeat; the daemon sends none), over $IDLE s each. A polling claim also counts as a heartbeat, so each one updates the worker row: the WAL line. Every figure ran $REPEAT times; the latency rows show the run with the highest p99, the idle rows the mean of the runs."
echo
echo "![Wake latency: pgwake against polling every second](wake-latency.png)"
echo
echo "docs/wake-latency.png (bench/plot.sh): the distribution of the raw samples, bench/out/polling.txt and pgwake's (bench/out/wake-warm.txt and wake-cold.txt when bench/wake.sh writes them, else bench/out/pgwake-listen-warm.txt from this script, labelled so)."
echo
echo "Built from: $BENCH_REV; run on $(date -u +%Y-%m-%d). Machine: $MACHINE; load average before / after: $LOAD0 / $LOAD1 (the machine is shared with other engineers' tests and benchmarks)."
echo "Rerun: \`${RERUN_ENV}sh bench/polling.sh -n $TASKS -c $STAGES -m $MEAN -s $IDLE -r $REPEAT && sh bench/plot.sh\`"
} >"$W/polling.md"
cp "$W/polling.md" "$OUTDIR/polling.md"
cat "$W/polling.md"
