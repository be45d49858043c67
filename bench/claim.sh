#!/bin/sh
# bench/claim.sh: claim+complete throughput of the pgwake task queue.
#
# Starts a throwaway PostgreSQL with the usual durability (fsync and
# synchronous_commit on), migrates two databases, loads 1,000,000 done tasks
# into one of them, and runs build/bench/claim for every configuration:
# single (claim n=1, complete) and batch (claim n=10, complete the 10 in one
# statement) with 1, 4 and 16 worker threads on the 1M-done database, and
# single with 4 threads on the database with no done task; each run starts
# right after a VACUUM. Then a sustained series on both databases: single,
# 4 threads, back-to-back runs with no VACUUM between them (only autovacuum,
# as in production). Prints Markdown tables and the machine, stops the cluster.
#
#   sh bench/claim.sh [-t SECONDS] [-r REPEATS] [-w WARMUP] [-s SECONDS] [-P PATCH.sql]
#     -t  measured seconds per run (default 5)
#     -r  runs of every configuration, interleaved (default 2)
#     -w  warm-up seconds before each measured window (default 1)
#     -s  length of each sustained series, in runs of -t seconds (default 60; 0: none)
#     -P  an SQL file applied to both databases after the migration, to try a
#         schema change without editing sql/ (the table says which file)
#   Environment: BUILD (default build), CLAIM_DONE (done tasks to load, default
#   1000000), CLAIM_MODES (default "single batch"), CLAIM_THREADS (default
#   "1 4 16"), CLAIM_PG_SETTINGS (extra server settings, "name=value ...").
set -eu

cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
SECS=5
REPEAT=2
WARMUP=1
PATCH=
SUSTAIN=60
while getopts t:r:w:s:P:h opt; do
    case $opt in
    s) SUSTAIN=$OPTARG ;;
    t) SECS=$OPTARG ;;
    r) REPEAT=$OPTARG ;;
    w) WARMUP=$OPTARG ;;
    P) PATCH=$OPTARG ;;
    *) sed -n '2,25s/^# \{0,1\}//p' "$0"; [ "$opt" = h ] && exit 0; exit 2 ;;
    esac
done
DONE_ROWS=${CLAIM_DONE:-1000000}
MODES=${CLAIM_MODES:-single batch}
THREADS=${CLAIM_THREADS:-1 4 16}
[ -z "$PATCH" ] || [ -r "$PATCH" ] || { echo "claim.sh: cannot read $PATCH" >&2; exit 2; }

# The benchmark binary: make's, else (while others' sources do not build) a
# direct compile of bench/claim.c alone, which needs only libpq.
WORK=$(mktemp -d /tmp/pgwake-claim.XXXXXX)
BIN=$BUILD/bench/claim
if ! make -s "$BIN" >"$WORK/make.log" 2>&1; then
    echo "claim.sh: make $BIN failed (tail of the log below); compiling bench/claim.c alone" >&2
    tail -n 5 "$WORK/make.log" >&2
    BIN=$WORK/claim
    # shellcheck disable=SC2046 # the flags are words
    cc -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -O2 \
        $(pkg-config --cflags libpq 2>/dev/null || echo -I/usr/include/postgresql) \
        bench/claim.c -lpq -lpthread -lm -o "$BIN"
fi

. tests/lib/pgtmp.sh
cleanup() {
    pgtmp_stop
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# shellcheck disable=SC2086
PGTMP_DURABLE=1 pgtmp_start ${CLAIM_PG_SETTINGS:-}

PSQL="psql -X -q -v ON_ERROR_STOP=1"
DB0=pgwake_bench0 # no done task before each run
DB1=pgwake_bench  # DONE_ROWS done tasks
for db in $DB0 $DB1; do
    $PSQL -d postgres -c "CREATE DATABASE $db"
    if [ -x "$BUILD/pgwake" ] && "$BUILD/pgwake" migrate -d "$PGTMP_DSN dbname=$db" >/dev/null; then
        how="$BUILD/pgwake migrate"
    else
        [ -x "$BUILD/pgwake" ] &&
            echo "claim.sh: WARNING: $BUILD/pgwake migrate failed; applying sql/ with psql" >&2
        for f in sql/[0-9]*.sql; do $PSQL -1 -d "$db" -f "$f"; done
        how="psql -1 -f sql/[0-9]*.sql"
    fi
    [ -z "$PATCH" ] || $PSQL -1 -d "$db" -f "$PATCH"
done
echo "migrated with: $how${PATCH:+, then $PATCH}" >&2

t0=$(date +%s)
$PSQL -d $DB1 -c "
    INSERT INTO pgwake.tasks (stage, payload, status, attempts, created_at, finished_at)
    SELECT 'bench', jsonb_build_object('n', g), 'done', 1,
           now() - interval '1 day', now() - interval '1 day' + g * interval '50 ms'
      FROM generate_series(1, $DONE_ROWS) g" \
    -c "VACUUM ANALYZE pgwake.tasks"
echo "loaded $DONE_ROWS done tasks in $(($(date +%s) - t0)) s" >&2

RESULTS=$WORK/results
: >"$RESULTS"
# run DB LABEL MODE THREADS: one measurement; a void run (queue ran dry) is
# repeated once with four times the pending tasks.
run() {
    db=$1 label=$2 mode=$3 n=$4
    pre=$(awk -v s="$SECS" -v w="$WARMUP" -v m="$mode" \
        'BEGIN { printf "%d", (s + w) * (m == "batch" ? 40000 : 20000) }')
    for _ in 1 2; do
        rc=0
        "$BIN" -d "$PGTMP_DSN dbname=$db" -m "$mode" -n "$n" -t "$SECS" -w "$WARMUP" \
            -p "$pre" -l "$label" >"$WORK/out" 2>"$WORK/err" || rc=$?
        [ "$rc" -eq 3 ] || break
        pre=$((pre * 4))
    done
    if [ "$rc" -ne 0 ]; then
        cat "$WORK/err" >&2
        echo "claim.sh: $label $mode n=$n failed (exit $rc)" >&2
        exit 1
    fi
    cat "$WORK/out" >>"$RESULTS"
    sed -n 's/^RESULT //p' "$WORK/out" | awk '{ print "  " $0 }' >&2
}

for r in $(seq 1 "$REPEAT"); do
    echo "run $r of $REPEAT" >&2
    $PSQL -d $DB0 -c "TRUNCATE pgwake.tasks"
    run $DB0 done0 single 4
    for mode in $MODES; do
        for n in $THREADS; do
            run $DB1 done1M "$mode" "$n"
        done
    done
done

# Sustained: back-to-back runs without the set-up (no VACUUM between them), so
# the dead index entries that claims leave behind are cleaned by autovacuum
# alone, whose trigger is 20% of the table by default: the table's done tasks
# decide how often it runs.
SUST=$WORK/sustained
: >"$SUST"
if [ "$SUSTAIN" -gt 0 ]; then
    chunks=$(awk -v s="$SUSTAIN" -v c="$SECS" 'BEGIN { n = int(s / c); print n < 1 ? 1 : n }')
    best=$(sed -n 's/^RESULT .*mode=single threads=4 .* rate=\([0-9.]*\).*/\1/p' "$RESULTS" |
        sort -n | tail -n 1)
    pre=$(awk -v b="${best:-3000}" -v s="$SUSTAIN" 'BEGIN { printf "%d", b * 1.5 * s + 20000 }')
    echo "sustained: $chunks runs of $SECS s per database, $pre pending tasks" >&2
    for db in $DB0 $DB1; do
        [ "$db" = "$DB0" ] && $PSQL -d $DB0 -c "TRUNCATE pgwake.tasks"
        label=sust$([ "$db" = "$DB0" ] && echo 0 || echo 1M)
        for c in $(seq 1 "$chunks"); do
            rc=0
            if [ "$c" -eq 1 ]; then set -- -p "$pre"; else set -- -S; fi
            "$BIN" -d "$PGTMP_DSN dbname=$db" -m single -n 4 -t "$SECS" -w 0 "$@" \
                -l "$label:$((c * SECS))" >"$WORK/out" 2>"$WORK/err" || rc=$?
            if [ "$rc" -eq 3 ]; then
                echo "claim.sh: sustained series on $db ran dry after $((c - 1)) runs" >&2
                break
            elif [ "$rc" -ne 0 ]; then
                cat "$WORK/err" >&2
                exit 1
            fi
            av=$($PSQL -At -d "$db" -c "SELECT autovacuum_count FROM pg_stat_user_tables
                                         WHERE relid = 'pgwake.tasks'::regclass")
            sed -n "s/^RESULT \(.*\)/\1 autovacuums=$av/p" "$WORK/out" | tee -a "$SUST" |
                awk '{ print "  " $0 }' >&2
        done
    done
fi

settings=$($PSQL -At -d $DB1 -c "SELECT string_agg(name || '=' || setting, ' ' ORDER BY name)
    FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'wal_sync_method',
                                    'shared_buffers', 'full_page_writes', 'autovacuum_naptime')")
pgver=$($PSQL -At -d $DB1 -c "SHOW server_version")
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)

echo
echo "Claim throughput: tasks/s and p50/p99 of one round (claim + complete; batch:"
echo "of 10 tasks), ${SECS} s per run after ${WARMUP} s warm-up, runs listed in order;"
echo "server CPU (the workers' backends), buffer accesses and WAL bytes per task: mean of the runs."
echo
echo "| form | N | done tasks | tasks/s | p50 ms | p99 ms | CPU ms/task | buffers/task | WAL B/task | aim |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"
awk -v aim_single=5900 -v aim_batch=20000 '
    /^RESULT / {
        delete f
        for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
        key = f["mode"] SUBSEP f["threads"] SUBSEP f["label"]
        if (!(key in rate)) { order[++nkeys] = key; runs[key] = 0 }
        runs[key]++
        sep = runs[key] > 1 ? ", " : ""
        rate[key] = rate[key] sep sprintf("%.0f", f["rate"])
        p50[key] = p50[key] sep sprintf("%.2f", f["p50_ms"])
        p99[key] = p99[key] sep sprintf("%.2f", f["p99_ms"])
        sum[key] += f["rate"]
        cpu[key] += f["cpu_ms_per_task"]; bufs[key] += f["bufs_per_task"]
        wal[key] += f["wal_per_task"]
        d = f["done_before"] + 0
        if (!(key in dmin) || d < dmin[key]) dmin[key] = d
        if (!(key in dmax) || d > dmax[key]) dmax[key] = d
    }
    END {
        for (k = 1; k <= nkeys; k++) {
            key = order[k]; split(key, p, SUBSEP)
            aim = ""
            if (p[2] == 4) {
                want = p[1] == "single" ? aim_single : aim_batch
                mean = sum[key] / runs[key]
                aim = sprintf("> %d: %s (mean %.0f)", want, mean > want ? "met" : "missed", mean)
            }
            n = runs[key]
            printf "| %s | %s | %s | %s | %s | %s | %.3f | %.0f | %.0f | %s |\n", p[1], p[2],
                   dmin[key] == dmax[key] ? dmin[key] : dmin[key] "-" dmax[key],
                   rate[key], p50[key], p99[key], cpu[key] / n, bufs[key] / n, wal[key] / n, aim
        }
    }' "$RESULTS"
if [ -s "$SUST" ]; then
    echo
    echo "Sustained, single, N = 4: back-to-back ${SECS} s runs, no VACUUM between them;"
    echo "autovacuums = autovacuum runs on pgwake.tasks so far (settings: see below)."
    echo
    echo "| after s | 0 done: tasks/s | CPU ms/task | buffers/task | autovacuums | 1M done: tasks/s | CPU ms/task | buffers/task | autovacuums |"
    echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    awk '
        {
            delete f
            for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
            split(f["label"], lp, ":"); t = lp[2] + 0
            cell = sprintf("%.0f | %.3f | %.0f | %s", f["rate"], f["cpu_ms_per_task"],
                           f["bufs_per_task"], f["autovacuums"])
            if (lp[1] == "sust0") c0[t] = cell; else c1[t] = cell
            if (!(t in seen)) { seen[t] = 1; ts[++nt] = t }
        }
        END {
            for (k = 1; k <= nt; k++) {
                t = ts[k]
                printf "| %d | %s | %s |\n", t, (t in c0) ? c0[t] : "- | - | - | -",
                       (t in c1) ? c1[t] : "- | - | - | -"
            }
        }' "$SUST"
fi
echo
echo "Machine: $(nproc) CPUs, $cpu, Linux $(uname -r), PostgreSQL $pgver"
echo "Settings: $settings; migrated with $how${PATCH:+, then $PATCH}"
echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
# shellcheck disable=SC2016 # the single quotes are for the reader
echo "Rerun: ${CLAIM_PG_SETTINGS:+CLAIM_PG_SETTINGS='$CLAIM_PG_SETTINGS' }sh bench/claim.sh -t $SECS -r $REPEAT -s $SUSTAIN${PATCH:+ -P $PATCH}"
