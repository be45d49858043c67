#!/bin/sh
# bench/health.sh: how fast pgwake releases the lease of a dead or hung
# worker, and what heartbeating workers cost the daemon (SPEC section 5,
# "Supervision", "Hung workers", "Several daemons").
#
#   kill:   a worker holding a task is SIGKILLed; from the kill to the NOTIFY
#           pgwake_task of the release (the task pending again), KILLS times
#           (bench/health.c `kill`); aim p99 < 50 ms.
#   hang:   a worker holding a task is SIGSTOPped; from its heartbeat deadline
#           (last_heartbeat + heartbeat_timeout, read afterwards) to the
#           release, HANGS times (`hang`); aim < 1 s.
#   remote: REMOTE workers registered with pgwake.register_worker and
#           heartbeating every second from one program (`remote`, 4
#           connections); the daemon holds maintenance, so their deadlines are
#           its business. Its CPU (utime+stime of /proc/PID/stat, and
#           schedstat), RSS and queries over SECONDS; aim < 5 % of one core.
#   local:  the daemon supervising LOCAL workers of its own (min_workers =
#           max_workers = N of `health worker`, idle, heartbeat_interval 1s):
#           the same figures, plus the workers' and their backends' CPU.
# Each figure runs REPEATS times. Markdown on stdout: the sections
# "## Health: crash and missed-heartbeat to release" and "## Daemon CPU with
# 500 workers" of docs/benchmarks.md (bench/report.sh puts them there); also
# kept in bench/out/health.md, with the raw samples in bench/out/health-*.txt.
# Progress on stderr.
#
#   sh bench/health.sh [-n KILLS] [-H HANGS] [-w REMOTE] [-l "LOCAL..."] [-s SECONDS] [-r REPEATS] [-p "PARTS"]
#     defaults: -n 200 -H 20 -w 500 -l "100 500" -s 60 -r 2 -p "kill hang remote local"
#   Environment: BUILD (default build); BENCH_SRC=head or a commit: measure
#   that commit (built in /tmp/pgwake-bench-src-REV), so others' unfinished
#   work in src/ stays out of the figures; BENCH_SRC_DIR=DIR: the sources in
#   DIR; KEEP_BENCH_DIR=1 keeps the run's folder (configs, daemon log);
#   BENCH_OUT_DIR: where the raw samples and the Markdown copy go (bench/out).
set -eu

cd "$(dirname "$0")/.."
KILLS=200
HANGS=20
REMOTE=500
LOCAL="100 500"
SECS=60
REPEAT=2
PARTS="kill hang remote local"
while getopts n:H:w:l:s:r:p:h opt; do
    case $opt in
    n) KILLS=$OPTARG ;;
    H) HANGS=$OPTARG ;;
    w) REMOTE=$OPTARG ;;
    l) LOCAL=$OPTARG ;;
    s) SECS=$OPTARG ;;
    r) REPEAT=$OPTARG ;;
    p) PARTS=$OPTARG ;;
    *) sed -n '2,/^set /s/^# \{0,1\}//p' "$0"; [ "$opt" = h ] && exit 0; exit 2 ;;
    esac
done
want() { case " $PARTS " in *" $1 "*) return 0 ;; esac; return 1; }

OUTDIR=${BENCH_OUT_DIR:-bench/out} # raw samples and a copy of the Markdown
mkdir -p "$OUTDIR"

. bench/lib/daemon.sh
MAXLOCAL=0
for n in $LOCAL; do [ "$n" -gt "$MAXLOCAL" ] && MAXLOCAL=$n; done
# Each local worker has two connections (its claims, its heartbeat thread).
bench_setup health -b health "$PRELOAD" "max_connections = $((2 * MAXLOCAL + 100))"
HEALTH=$W/bin/health
RERUN_ENV=
[ "${BENCH_SRC:-tree}" != tree ] && RERUN_ENV="BENCH_SRC=$BENCH_SRC "
# The daemon, the local workers and the benchmark connect as roles of their
# own, so pg_stat_statements tells the daemon's queries from the others';
# the workers' role has no connection limit: there may be 500 of them.
bench_roles -1
bench_stmts

MACHINE=$(bench_machine)
LOAD0=$(bench_load)
RESULTS=$W/results
: >"$RESULTS"
TICK=$(getconf CLK_TCK)

# snap PIDS: "pid ticks" per live pid; snap_delta FILE0 FILE1: the ticks used
# between two snaps (a pid that appeared in between counts whole; one that
# exited in between is lost), so a changing set of processes is handled.
snap() { for p in "$@"; do _l=$(sed 's/^.*) //' /proc/"$p"/stat 2>/dev/null) && echo "$p $_l"; done | awk '{ print $1, $13 + $14 }'; }
pg_pids() { _pm=$(head -n 1 "$PGTMP_DIR/data/postmaster.pid"); echo "$_pm $(pgrep -P "$_pm" -d ' ')"; }
snap_delta() { awk 'NR == FNR { t0[$1] = $2; next } { s += $2 - ($1 in t0 ? t0[$1] : 0) } END { print s + 0 }' "$1" "$2"; }
stmt_top() { # stmt_top ROLE: "calls x name" of ROLE's statements, most called first
    q "SELECT calls || E'\t' || regexp_replace(query, '\s+', ' ', 'g') FROM pg_stat_statements s
       JOIN pg_roles r ON r.oid = s.userid WHERE r.rolname = '$1' ORDER BY calls DESC LIMIT 6" |
        awk -F '\t' '{ n = $2; if (match(n, /pgwake\.[a-z_]+/)) n = substr(n, RSTART, RLENGTH); else n = substr(n, 1, 40)
                      printf "%s%d x %s", (NR > 1 ? ", " : ""), $1, n } END { if (NR == 0) printf "none" }'
}

conf() { # conf NAME: [pgwake] plus the stage lines on stdin, into $W/NAME
    {
        cat <<EOF
[pgwake]
host = bench-health
log_dir = $W/logs
lock_file = $W/pgwake.lock
http_listen = 127.0.0.1:$HTTP_PORT
worker_dsn = $WORKER_DSN

EOF
        cat
    } | bench_conf "$1"
}

conf health.conf <<EOF
[stage:crash]
command = $HEALTH worker
max_workers = 1
restart_delay = 100ms
restart_delay_max = 100ms
max_restarts = 0
kill_timeout = 1s

[stage:hang]
command = $HEALTH worker
max_workers = 1
heartbeat_interval = 1s
heartbeat_timeout = 2s
lease = 1m
restart_delay = 100ms
restart_delay_max = 100ms
max_restarts = 0
kill_timeout = 1s
EOF

# cpu_window RUN SETUP EXTRA_PIDS_CMD: SECS seconds of the daemon (and of the
# pids EXTRA_PIDS_CMD prints: workers, backends), then one RESULT line.
cpu_window() {
    _run=$1 _setup=$2 _n=$3
    _dbe=$(backend_pids bench_daemon)
    _wp=$(q "SELECT string_agg(pid::text, ' ') FROM pgwake.workers WHERE host = 'bench-health' AND state IN ('starting', 'alive')")
    _wbe=$(backend_pids bench_worker)
    stmt_reset
    _t0=$(date +%s%N) _d0=$(proc_ticks "$DAEMON_PID") _s0=$(proc_cpu_ns "$DAEMON_PID") _c0=$(proc_ctx "$DAEMON_PID")
    _b0=$(proc_ticks $_dbe) _w0=$(proc_ticks ${_wp:-}) _wb0=$(proc_ticks ${_wbe:-})
    snap $(pg_pids) >"$W/pg.snap0"
    sleep "$SECS"
    _t1=$(date +%s%N) _d1=$(proc_ticks "$DAEMON_PID") _s1=$(proc_cpu_ns "$DAEMON_PID") _c1=$(proc_ctx "$DAEMON_PID")
    _b1=$(proc_ticks $_dbe) _w1=$(proc_ticks ${_wp:-}) _wb1=$(proc_ticks ${_wbe:-})
    snap $(pg_pids) >"$W/pg.snap1"
    _dq=$(stmt_calls bench_daemon)
    _top=$(stmt_top bench_daemon | tr ' ' '~')
    echo "RESULT run=$_run bench=$_setup workers=$_n wall_ns=$((_t1 - _t0)) tick=$TICK daemon_ticks=$((_d1 - _d0)) daemon_ns=$((_s1 - _s0)) wakeups=$((_c1 - _c0)) rss_kb=$(proc_rss_kb "$DAEMON_PID") hwm_kb=$(proc_hwm_kb "$DAEMON_PID") threads=$(ls /proc/"$DAEMON_PID"/task | wc -l) fds=$(ls /proc/"$DAEMON_PID"/fd | wc -l) daemon_queries=$_dq backend_ticks=$((_b1 - _b0)) worker_ticks=$((_w1 - _w0)) worker_backend_ticks=$((_wb1 - _wb0)) pg_ticks=$(snap_delta "$W/pg.snap0" "$W/pg.snap1") load=$(cut -d' ' -f1 /proc/loadavg) top=$_top" |
        tee -a "$RESULTS" | sed 's/^RESULT /  /' >&2
}

for r in $(seq 1 "$REPEAT"); do
    if want kill || want hang; then
        q "DELETE FROM pgwake.tasks; DELETE FROM pgwake.workers" >/dev/null
        bench_start health.conf
        if want kill; then
            bench_log "run $r of $REPEAT: SIGKILL to release, $KILLS kills"
            "$HEALTH" kill -s crash -n "$KILLS" -k 3 -o "$W/kill.$r.txt" -d "$PGTMP_DSN" | collect "$r" ||
                bench_log "kill: some kills were not released in time or left a wrong row (see above)"
        fi
        if want hang; then
            bench_log "run $r of $REPEAT: missed heartbeat to release, $HANGS stops (heartbeat_interval 1s, heartbeat_timeout 2s)"
            "$HEALTH" hang -s hang -n "$HANGS" -k 2 -T 2 -o "$W/hang.$r.txt" -d "$PGTMP_DSN" | collect "$r" ||
                bench_log "hang: some stops were not released, or the stopped worker not ended (see above)"
        fi
        cp "$W/daemon.log" "$W/daemon.health.$r.log"
        bench_stop
    fi

    if want remote; then
        bench_log "run $r of $REPEAT: $REMOTE remote workers heartbeating every 1 s, $SECS s"
        q "DELETE FROM pgwake.tasks; DELETE FROM pgwake.workers" >/dev/null
        conf remote.conf <<EOF
[stage:local]
command = $HEALTH worker
EOF
        bench_start remote.conf
        "$HEALTH" remote -n "$REMOTE" -c 4 -i 1000 -T 3 -t $((SECS + 15)) -d "$PGTMP_DSN" >"$W/remote.out" 2>"$W/remote.err" &
        BG_PID=$!
        _i=0
        until grep -q '^registered' "$W/remote.out"; do
            _i=$((_i + 1))
            if [ $_i -gt 600 ] || ! kill -0 "$BG_PID" 2>/dev/null; then
                echo "the remote workers did not register; $(cat "$W/remote.err")" >&2
                exit 1
            fi
            sleep 0.1
        done
        sleep 3
        cpu_window "$r" remote "$REMOTE"
        wait "$BG_PID" || bench_log "remote: some heartbeats failed: $(cat "$W/remote.err")"
        BG_PID=
        collect "$r" <"$W/remote.out"
        bench_stop
    fi

    if want local; then
        for n in $LOCAL; do
            bench_log "run $r of $REPEAT: $n local workers, idle, heartbeat_interval 1s; $SECS s"
            q "DELETE FROM pgwake.tasks; DELETE FROM pgwake.workers" >/dev/null
            conf local.conf <<EOF
[stage:local]
command = $HEALTH worker
min_workers = $n
max_workers = $n
idle_timeout = 1h
heartbeat_interval = 1s
heartbeat_timeout = 3s
lease = 1m
EOF
            _t0=$(date +%s%N)
            bench_start local.conf
            if ! wait_sql "SELECT count(*) >= $n FROM pgwake.workers WHERE host = 'bench-health' AND state = 'alive'" 300; then
                bench_log "only $(q "SELECT count(*) FROM pgwake.workers WHERE host = 'bench-health' AND state = 'alive'") of $n local workers alive after 300 s; skipped"
                echo "RESULT run=$r bench=local_failed workers=$n" >>"$RESULTS"
                bench_stop
                continue
            fi
            _up=$(( ($(date +%s%N) - _t0) / 1000000 ))
            sleep 5
            cpu_window "$r" local "$n"
            _dead=$(q "SELECT count(*) FROM pgwake.workers WHERE host = 'bench-health' AND state = 'dead'")
            _t0=$(date +%s%N)
            bench_stop
            _down=$(( ($(date +%s%N) - _t0) / 1000000 ))
            echo "RESULT run=$r bench=local_startstop workers=$n up_ms=$_up stop_ms=$_down dead=$_dead" |
                tee -a "$RESULTS" | sed 's/^RESULT /  /' >&2
        done
    fi
done
LOAD1=$(bench_load)
last=$REPEAT
[ -f "$W/kill.$last.txt" ] && cat "$W"/kill.*.txt >"$OUTDIR/health-kill.txt"
[ -f "$W/hang.$last.txt" ] && cat "$W"/hang.*.txt >"$OUTDIR/health-hang.txt"
cp "$RESULTS" "$OUTDIR/health-results.txt"

{
if want kill || want hang; then
echo "## Health: crash and missed-heartbeat to release"
echo
awk -v reps="$REPEAT" -v kills="$KILLS" -v hangs="$HANGS" '
    /^RESULT / && /p50_us=/ {
        delete f
        for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
        k = f["bench"]; r = f["run"]
        p50[k, r] = f["p50_us"] / 1000; p90[k, r] = f["p90_us"] / 1000
        p99[k, r] = f["p99_us"] / 1000; mx[k, r] = f["max_us"] / 1000; cnt[k, r] = f["n"]
        bad[k, r] = f["missed"] + f["bad_row"] + f["not_gone"]
        runs[k] = runs[k] " " r
    }
    function worst(k,    a, i, b, nr) { # the run with the highest p99: the figure shown
        nr = split(runs[k], a, " "); b = a[1]
        for (i = 2; i <= nr; i++) if (p99[k, a[i]] > p99[k, b]) b = a[i]
        return b
    }
    function spread(arr, k,    a, i, nr, lo, hi, v) {
        nr = split(runs[k], a, " ")
        for (i = 1; i <= nr; i++) {
            v = arr[k, a[i]]
            if (i == 1 || v < lo) lo = v
            if (i == 1 || v > hi) hi = v
        }
        return nr > 1 ? sprintf("%.1f-%.1f", lo, hi) : sprintf("%.1f", lo)
    }
    function row(label, k, head, aim,    r) {
        if (!(k in runs)) return
        r = worst(head != "" ? head : k)
        printf "| %s | %d | %.1f | %.1f | %.1f | %.1f | %s / %s | %s |\n", label, cnt[k, r], p50[k, r],
               p90[k, r], p99[k, r], mx[k, r], spread(p50, k), spread(p99, k), aim
    }
    END {
        print "| what | n | p50 ms | p90 ms | p99 ms | max ms | all runs: p50 / p99 ms | aim |"
        print "|---|---:|---:|---:|---:|---:|---|---|"
        if ("kill_release" in runs) {
            r = worst("kill_release"); nb = 0
            for (rr = 1; rr <= reps; rr++) nb += bad["kill_release", rr]
            row("**SIGKILL of a worker holding a task -> the task pending again** (NOTIFY pgwake_task of release_worker received)",
                "kill_release", "", sprintf("p99 < 50 ms: %s%s", p99["kill_release", r] < 50 ? "met" : "missed",
                nb ? sprintf("; %d kills not released in 10 s or wrong row", nb) : ""))
            row("&nbsp;&nbsp;SIGKILL -> the task leased again by the restarted worker (restart_delay = 100ms, then fork, exec, connect, claim)",
                "kill_released_again", "kill_release", "")
        }
        if ("hang_deadline_to_notify" in runs) {
            r = worst("hang_deadline_to_notify"); nb = 0
            for (rr = 1; rr <= reps; rr++) nb += bad["hang_deadline_to_notify", rr]
            row("**heartbeat deadline (last_heartbeat + heartbeat_timeout) -> lease released** (NOTIFY received)",
                "hang_deadline_to_notify", "", sprintf("< 1 s: %s%s", mx["hang_deadline_to_notify", r] < 1000 ? "met" : "missed",
                nb ? sprintf("; %d stops not released, or the stopped worker not ended", nb) : ""))
            row("&nbsp;&nbsp;deadline -> ended_at (now() of the daemon'"'"'s releasing statement)", "hang_deadline_to_ended_at", "hang_deadline_to_notify", "")
            row("&nbsp;&nbsp;SIGSTOP -> release (heartbeat_interval 1s, heartbeat_timeout 2s: up to 2 s by design)", "hang_stop_to_release", "hang_deadline_to_notify", "")
            row("&nbsp;&nbsp;release -> the stopped process gone (the daemon'"'"'s SIGTERM+SIGCONT)", "hang_release_to_gone", "hang_deadline_to_notify", "")
        }
    }' "$RESULTS"
echo
echo "A daemon serving two stages of \`health worker\` (bench/health.c: claims a task and holds it, heartbeating), max_workers = 1, restart_delay = restart_delay_max = 100ms, max_restarts = 0. The task has max_attempts 2000000000, so every release makes it pending again. The benchmark LISTENs on pgwake_task on a connection of its own, blocked in poll(2); after each release it checks the row (the task pending or leased by another worker, the worker dead with reason \`signal 9\` / \`heartbeat timeout\`). Times are CLOCK_REALTIME of the benchmark; the deadline and ended_at are database time, on the same machine. The row shown is the run with the highest p99, the last column the spread of all $REPEAT runs."
echo
echo "Built from: $BENCH_REV; run on $(date -u +%Y-%m-%d). Machine: $MACHINE; load average before / after: $LOAD0 / $LOAD1 (the machine is shared with other engineers' tests and benchmarks)."
echo "Rerun: \`${RERUN_ENV}sh bench/health.sh -p \"kill hang\" -n $KILLS -H $HANGS -r $REPEAT\`; raw samples (ms, every run): bench/out/health-kill.txt, bench/out/health-hang.txt."
echo
fi
if want remote || want local; then
echo "## Daemon CPU with 500 workers"
echo
echo "| set-up | run | window s | daemon CPU, % of one core: utime+stime (schedstat) | daemon wake-ups/s | daemon VmRSS MiB (peak) | queries by the daemon /s | its backend CPU % | workers' CPU % (their backends) | all postgres CPU % | load | aim |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
awk '/^RESULT / && (/bench=remote / || /bench=local /) {
        delete f
        for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
        s = f["wall_ns"] / 1e9; tk = f["tick"]
        pct = f["daemon_ticks"] / tk / s * 100
        set = f["bench"] == "remote" ? sprintf("%d remote workers (register_worker + heartbeat every 1 s, heartbeat_timeout 3s, from 4 connections)", f["workers"]) \
                                     : sprintf("%d local workers (idle `health worker`, heartbeat_interval 1s, heartbeat_timeout 3s)", f["workers"])
        wk = f["bench"] == "local" ? sprintf("%.1f (%.1f)", f["worker_ticks"] / tk / s * 100, f["worker_backend_ticks"] / tk / s * 100) : "-"
        printf "%s %06d %03d\t| %s | %s | %.0f | %.2f (%.2f) | %.1f | %.1f (%.1f) | %.2f | %.2f | %s | %.1f | %s | < 5 %%: %s |\n",
               f["bench"] == "remote" ? "a" : "b", f["workers"], f["run"], set, f["run"], s,
               pct, f["daemon_ns"] / f["wall_ns"] * 100, f["wakeups"] / s, f["rss_kb"] / 1024, f["hwm_kb"] / 1024,
               f["daemon_queries"] / s, f["backend_ticks"] / tk / s * 100, wk, f["pg_ticks"] / tk / s * 100, f["load"],
               pct < 5 ? "met" : "missed"
    }' "$RESULTS" | sort | cut -f 2-
echo
awk '/^RESULT / && /bench=remote_heartbeat_rtt/ {
        delete f
        for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
        printf "%sRemote heartbeats, run %s: %s sent (%.0f/s), %s late by more than 100 ms, %s failed; round trip p50 %.2f ms, p99 %.2f ms.", (n++ ? " " : ""),
               f["run"], f["sent"], f["per_s"], f["late"], f["errors"], f["p50_us"] / 1000, f["p99_us"] / 1000
    }
    END { if (n) print "" }' "$RESULTS"
awk '/^RESULT / && /bench=local_startstop/ {
        delete f
        for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
        printf "%s%d local workers, run %s: all alive %.1f s after the daemon started; SIGTERM to the daemon exited after %.1f s; %d declared dead meanwhile.", (n++ ? " " : ""),
               f["workers"], f["run"], f["up_ms"] / 1000, f["stop_ms"] / 1000, f["dead"]
    }
    /^RESULT / && /bench=local_failed/ {
        delete f
        for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
        printf "%s%d local workers, run %s: not all alive within 300 s (skipped).", (n++ ? " " : ""), f["workers"], f["run"]
    }
    END { if (n) print "" }' "$RESULTS"
echo
echo "Most frequent queries of the daemon in each window (pg_stat_statements, by the daemon's own role):"
echo
awk '/^RESULT / && (/bench=remote / || /bench=local /) {
        delete f
        for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
        t = f["top"]; gsub(/~/, " ", t)
        printf "- %s %s workers, run %s: %s\n", f["bench"], f["workers"], f["run"], t
    }' "$RESULTS"
echo
echo "Window: $SECS s after everything was up (plus 3-5 s settling). Daemon CPU from /proc/PID/stat (utime+stime, $TICK ticks/s) and, in brackets, schedstat (ns, every thread); % of one core. \"Its backend\": the daemon's database connection, whose work (expire_leases, expire_worker, recounts) the daemon causes. Workers' CPU: every local worker process (both threads) and their backends. All postgres: every process of the throwaway cluster (with remote workers, mostly their own heartbeats). Queries: \`expire_worker\` is the daemon re-reading the last_heartbeat of its local workers at their deadlines (SPEC section 5, \"Hung workers\"), in batches of the workers due within 5 ms; \`expire_leases\` is maintenance, which this daemon holds, at the next deadline of any worker."
echo
echo "Built from: $BENCH_REV; run on $(date -u +%Y-%m-%d). Machine: $MACHINE; load average before / after: $LOAD0 / $LOAD1 (shared)."
echo "Rerun: \`${RERUN_ENV}sh bench/health.sh -p \"remote local\" -w $REMOTE -l \"$LOCAL\" -s $SECS -r $REPEAT\`"
fi
} >"$W/health.md"
cp "$W/health.md" "$OUTDIR/health.md"
cat "$W/health.md"
