#!/bin/sh
# bench/wake.sh: wake latency of pgwake, from the COMMIT of an INSERT INTO
# pgwake.tasks to pgwake_claim() returning that task in a worker.
#
#   warm: one worker already running and idle (min_workers = max_workers = 1),
#         N tasks spaced INTERVAL ms apart (+-10 %); the daemon's fast path
#         sends W, the worker claims.
#   cold: min_workers = 0, idle_timeout = 100ms and tasks COLD_INTERVAL ms
#         apart, so every task finds no worker: the daemon registers one, forks
#         and execs it, the worker connects and claims. The start-up is split
#         into its steps (see bench/wake.c).
#   for scale, on the same machine and cluster: INSERT + NOTIFY to a LISTENing
#         libpq client, a claim round trip, SELECT 1, fork+exec of /bin/true
#         and of a binary linked with libpq, a new libpq connection.
#
# The worker is build/bench/wake itself (`wake worker`), a C worker using the
# pgwake worker library. Every configuration runs REPEATS times, interleaved;
# the table shows the better-behaved run (lowest p99) and the spread of all.
# Markdown on stdout (the body of "## Wake latency" in docs/benchmarks.md),
# progress on stderr.
#
#   sh bench/wake.sh [-n N] [-i INTERVAL_MS] [-c COLD_N] [-I COLD_INTERVAL_MS] [-r REPEATS]
#     defaults: -n 1000 -i 20 -c 150 -I 400 -r 2
set -eu

cd "$(dirname "$0")/.."
N=1000
INTERVAL=20
COLD_N=150
COLD_INTERVAL=400
REPEAT=2
while getopts n:i:c:I:r:h opt; do
    case $opt in
    n) N=$OPTARG ;;
    i) INTERVAL=$OPTARG ;;
    c) COLD_N=$OPTARG ;;
    I) COLD_INTERVAL=$OPTARG ;;
    r) REPEAT=$OPTARG ;;
    *) sed -n '2,/^set /s/^# \{0,1\}//p' "$0"; [ "$opt" = h ] && exit 0; exit 2 ;;
    esac
done

. bench/lib/daemon.sh
bench_setup wake "$PRELOAD"
bench_roles
bench_stmts
LOAD0=$(bench_load)
RESULTS=$W/results
: >"$RESULTS"

# queries RUN LABEL TASKS: what the daemon's and the workers' roles sent since
# the last stmt_reset, per task.
queries() {
    d=$(stmt_calls bench_daemon) w=$(stmt_calls bench_worker)
    echo "RESULT run=$1 bench=$2_queries tasks=$3 daemon=$d worker=$w" >>"$RESULTS"
    echo "$2_queries: daemon $(stmt_summary bench_daemon "$3")" >"$W/$2.q.$1"
    echo "$2_queries: workers $(stmt_summary bench_worker "$3")" >>"$W/$2.q.$1"
    sed 's/^/  /' "$W/$2.q.$1" >&2
}

common_conf() {
    cat <<EOF
[pgwake]
host = bench-wake
log_dir = $W/logs
lock_file = $W/pgwake.lock
http_listen = 127.0.0.1:$HTTP_PORT
worker_dsn = $WORKER_DSN
EOF
}

for r in $(seq 1 "$REPEAT"); do
    bench_log "run $r of $REPEAT: baselines"
    "$WAKE" spawn -n 200 -d "$PGTMP_DSN" | collect "$r"
    "$WAKE" roundtrip -n 1000 -d "$PGTMP_DSN" | collect "$r"
    "$WAKE" listen -n "$N" -i "$INTERVAL" -k 20 -d "$PGTMP_DSN" | collect "$r"

    bench_log "run $r: warm wake, $N tasks $INTERVAL ms apart"
    rm -f "$W/warm.out"
    { common_conf; cat <<EOF

[stage:bench]
command = $WAKE worker $W/warm.out
min_workers = 1
max_workers = 1
idle_timeout = 1h
EOF
    } | bench_conf warm.conf
    bench_start warm.conf
    wait_sql "SELECT count(*) = 1 FROM pgwake.workers WHERE stage = 'bench' AND state = 'alive'" 30 ||
        { echo "the warm worker did not come up" >&2; tail "$W/daemon.log" >&2; exit 1; }
    stmt_reset
    "$WAKE" produce -s bench -n "$N" -i "$INTERVAL" -k 20 -o "$W/warm.out" -l warm \
        -d "$PGTMP_DSN" | collect "$r"
    queries "$r" warm $((N + 20))
    bench_stop

    bench_log "run $r: cold start, $COLD_N tasks $COLD_INTERVAL ms apart"
    rm -f "$W/cold.out"
    { common_conf; cat <<EOF

[stage:bench]
command = $WAKE worker $W/cold.out
min_workers = 0
max_workers = 1
idle_timeout = 100ms
EOF
    } | bench_conf cold.conf
    bench_start cold.conf
    stmt_reset
    "$WAKE" produce -s bench -n "$COLD_N" -i "$COLD_INTERVAL" -k 3 -o "$W/cold.out" -l cold \
        -d "$PGTMP_DSN" | collect "$r"
    sleep 0.5 # the last worker's idle timeout and exit
    queries "$r" cold $((COLD_N + 3))
    bench_stop
    q "DELETE FROM pgwake.tasks; DELETE FROM pgwake.workers" >/dev/null
done

MACHINE=$(bench_machine)
SETTINGS=$(q "SELECT string_agg(name || '=' || setting, ' ' ORDER BY name) FROM pg_settings
              WHERE name IN ('fsync', 'synchronous_commit')")
LOAD1=$(bench_load)

# Table: per row, the representative run (warm_* and cold_* rows follow their
# group's head row warm / cold; others their own lowest p99), plus the spread.
awk -v reps="$REPEAT" -v n="$N" -v iv="$INTERVAL" -v cn="$COLD_N" -v civ="$COLD_INTERVAL" '
    /^RESULT / {
        delete f
        for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
        k = f["bench"]; r = f["run"]
        p50[k, r] = f["p50_us"] / 1000; p90[k, r] = f["p90_us"] / 1000
        p99[k, r] = f["p99_us"] / 1000; mx[k, r] = f["max_us"] / 1000
        cnt[k, r] = f["n"]; extra[k, r] = "lost=" f["lost"] " cold=" f["cold"] " woken=" f["woken"] " pids=" f["pids"]
        runs[k] = runs[k] " " r
    }
    function best(k,    a, i, b, nr) {
        nr = split(runs[k], a, " "); b = a[1]
        for (i = 2; i <= nr; i++) if (p99[k, a[i]] < p99[k, b]) b = a[i]
        return b
    }
    function spread(arr, k,    a, i, nr, lo, hi, v) {
        nr = split(runs[k], a, " ")
        for (i = 1; i <= nr; i++) {
            v = arr[k, a[i]]
            if (i == 1 || v < lo) lo = v
            if (i == 1 || v > hi) hi = v
        }
        return nr > 1 ? sprintf("%.2f-%.2f", lo, hi) : sprintf("%.2f", lo)
    }
    function row(label, k, head, aim,    r) {
        if (!(k in runs)) return
        r = best(head != "" ? head : k)
        printf "| %s | %.2f | %.2f | %.2f | %.2f | %s / %s | %s |\n", label, p50[k, r], p90[k, r],
               p99[k, r], mx[k, r], spread(p50, k), spread(p99, k), aim
    }
    function verdict(k, a50, a99,    r) {
        r = best(k)
        return sprintf("p50 < %g ms: %s; p99 < %g ms: %s", a50, p50[k, r] < a50 ? "met" : "missed",
                       a99, p99[k, r] < a99 ? "met" : "missed")
    }
    END {
        print "| what | p50 ms | p90 ms | p99 ms | max ms | all runs: p50 / p99 ms | aim |"
        print "|---|---:|---:|---:|---:|---|---|"
        row(sprintf("**warm wake**: COMMIT returned -> claim returned in the idle worker (%d tasks, %d ms apart)", n, iv),
            "warm", "", verdict("warm", 1, 3))
        row("&nbsp;&nbsp;same, from the INSERT being sent", "warm_from_send", "warm", "")
        row("&nbsp;&nbsp;a. COMMIT returned -> W ended the worker'"'"'s wait (notification, daemon, wake fd; tasks whose W came after their commit)", "warm_commit_to_woken", "warm", "")
        row("&nbsp;&nbsp;b. the claim call that returned the task (same tasks)", "warm_claim_call", "warm", "")
        row(sprintf("**cold start**: COMMIT returned -> claim returned in a newly spawned C worker (%d tasks, %d ms apart)", cn, civ),
            "cold", "", sprintf("p50 < 5 ms: %s", p50["cold", best("cold")] < 5 ? "met" : "missed"))
        row("&nbsp;&nbsp;1. COMMIT -> register_worker transaction began (notification, daemon)", "cold_commit_to_register", "cold", "")
        row("&nbsp;&nbsp;2. -> main() of the worker (register round trip, fork, exec, dynamic loading)", "cold_register_to_main", "cold", "")
        row("&nbsp;&nbsp;3. -> pgwake_open returned (connect, heartbeat thread started)", "cold_main_to_open", "cold", "")
        row("&nbsp;&nbsp;4. -> first claim returned", "cold_open_to_claim", "cold", "")
        row("for scale: INSERT + pg_notify COMMIT returned -> notification read by a LISTENing libpq client", "listen_notify", "", "")
        row("for scale: pgwake_claim() returning a task (one round trip)", "claim_task", "", "")
        row("for scale: pgwake_claim() finding nothing", "claim_empty", "", "")
        row("for scale: the first pgwake.claim() on a new connection (fresh backend)", "claim_first_of_backend", "", "")
        row("for scale: the second pgwake.claim() on that connection", "claim_second_of_backend", "", "")
        row("for scale: pgwake_complete()", "complete", "", "")
        row("for scale: SELECT 1", "select1", "", "")
        row("for scale: fork + exec + wait of /bin/true", "exec_true", "", "")
        row("for scale: fork + exec + wait of a program linked with libpq (`wake noop`)", "exec_bench_binary", "", "")
        row("for scale: a new libpq connection (unix socket, trust)", "new_connection", "", "")
        r = best("warm")
        if (("warm_commit_to_woken", r) in p50 && ("listen_notify" in runs))
            printf "\nWarm wake, run shown, at p50: %.2f ms from the COMMIT to the W that ended the worker'"'"'s wait (a bare LISTENing libpq client: %.2f ms), then %.2f ms for the claim call itself (a claim in a busy loop: %.2f ms; after a wait the worker, its backend and the CPU caches are cold).\n",
                   p50["warm_commit_to_woken", r], p50["listen_notify", best("listen_notify")],
                   p50["warm_claim_call", r], p50["claim_task", best("claim_task")]
        c = best("cold")
        if (("cold_register_to_main", c) in p50 && ("exec_bench_binary" in runs) && ("new_connection" in runs))
            printf "\nCold start, run shown, at p50: the daemon reacts in %.2f ms (step 1); the rest is the new process: a fork + exec of a program linked with libpq alone takes %.2f ms here (/bin/true: %.2f ms: the dynamic loading of libpq and its TLS, LDAP and Kerberos libraries), a new connection %.2f ms, and the first pgwake.claim() of a fresh backend %.2f ms (catalog caches filled, PL/pgSQL compiled; %.2f ms for a claim on a long-lived connection).\n",
                   p50["cold_commit_to_register", c], p50["exec_bench_binary", best("exec_bench_binary")],
                   p50["exec_true", best("exec_true")], p50["new_connection", best("new_connection")],
                   p50["claim_first_of_backend", best("claim_first_of_backend")], p50["claim_task", best("claim_task")]
        r = best("warm")
        printf "\nWarm run shown: %s (pids=1: one worker process served every task; woken: tasks whose W came after their commit, split in a and b).", extra["warm", r]
        r = best("cold")
        printf " Cold run shown: %s (cold = tasks whose worker started after their COMMIT).\n", extra["cold", r]
    }' "$RESULTS"
echo
echo "Queries per task, from pg_stat_statements (the daemon and the workers connect as roles of their own), run $REPEAT:"
echo
for k in warm cold; do
    [ -f "$W/$k.q.$REPEAT" ] && sed 's/^\([a-z]*\)_queries: /- \1: /' "$W/$k.q.$REPEAT"
done
echo
echo "Built from: $BENCH_REV; run on $(date -u +%Y-%m-%d)."
echo "Machine: $MACHINE; cluster from tests/lib/pgtmp.sh ($SETTINGS)."
echo "Load average before / after: $LOAD0 / $LOAD1 (the machine is shared; each configuration ran $REPEAT times, interleaved)."
echo "Rerun: \`sh bench/wake.sh -n $N -i $INTERVAL -c $COLD_N -I $COLD_INTERVAL -r $REPEAT\`"
