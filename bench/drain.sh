#!/bin/sh
# bench/drain.sh: drain throughput of pgwake against graphile-worker, side by
# side on one throwaway cluster (fsync, synchronous_commit and
# full_page_writes on), one system at a time, rounds alternating the order.
#
# Each measurement queues N no-op tasks, VACUUMs, CHECKPOINTs, then times
# from the workers' start until every task is done:
#   pgwake default:    4 worker processes, pgwake_run, handler returns NULL
#   pgwake batched:    the same with claim_batch = B (PGWAKE_CLAIM_BATCH)
#   graphile default:  graphile-worker 0.18, its defaults (concurrency 10)
#   graphile batched:  its performance page's batching advice (localQueue
#                      size 500, completeJobBatchDelay/failJobBatchDelay 0)
# and prints a Markdown table of tasks/s and the ratios the aims are about.
# graphile-worker is installed on demand (npm ci in bench/graphile, from its
# committed package-lock.json); without node/npm only pgwake is measured.
#
#   sh bench/drain.sh [-n TASKS] [-r ROUNDS] [-b CLAIM_BATCH] [-w WORKERS]
#     defaults: -n 20000 -r 3 -b 100 -w 4
#   Environment: BUILD (default build), GRAPHILE_BATCH_DELAY_MS (default 0).
set -eu

cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
N=20000 ROUNDS=3 BATCH=100 WORKERS=4
while getopts n:r:b:w:h opt; do
    case $opt in
    n) N=$OPTARG ;;
    r) ROUNDS=$OPTARG ;;
    b) BATCH=$OPTARG ;;
    w) WORKERS=$OPTARG ;;
    *) sed -n '2,/^set /s/^# \{0,1\}//p' "$0" | sed '$d'; [ "$opt" = h ] && exit 0; exit 2 ;;
    esac
done
make -s "$BUILD/bench/drain" "$BUILD/pgwake" >&2

GRAPHILE=1
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "drain.sh: node or npm missing: graphile-worker not measured" >&2
    GRAPHILE=0
elif [ ! -d bench/graphile/node_modules/graphile-worker ]; then
    (cd bench/graphile && npm ci --no-audit --no-fund --loglevel=error) >&2 ||
        { echo "drain.sh: npm ci failed: graphile-worker not measured" >&2; GRAPHILE=0; }
fi

. tests/lib/pgtmp.sh
WORK=$(mktemp -d /tmp/pgwake-drain.XXXXXX)
cleanup() { pgtmp_stop; rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
PGTMP_DURABLE=1 pgtmp_start
psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE pgwake_drain" -c "CREATE DATABASE graphile_drain"
"$BUILD/pgwake" migrate -d "$PGTMP_DSN dbname=pgwake_drain" >&2
PDSN="$PGTMP_DSN dbname=pgwake_drain"
GURL="postgresql:///graphile_drain?host=$PGTMP_DIR&port=5432&user=postgres"

RES=$WORK/results
: >"$RES"
measure() { # measure SYSTEM MODE ROUND
    case $1.$2 in
    pgwake.default) out=$("$BUILD/bench/drain" -d "$PDSN" -n "$N" -w "$WORKERS" -b 1) ;;
    pgwake.batched) out=$("$BUILD/bench/drain" -d "$PDSN" -n "$N" -w "$WORKERS" -b "$BATCH") ;;
    graphile.*) out=$(node bench/graphile/drain.mjs "$GURL" "$N" "$2") ;;
    esac
    echo "$out" | sed -n "s/^RESULT /RESULT round=$3 /p" | tee -a "$RES" | sed 's/^RESULT /  /' >&2
}
load0=$(cut -d' ' -f1-3 /proc/loadavg)
r=1
while [ $r -le "$ROUNDS" ]; do
    if [ $((r % 2)) = 1 ]; then order="pgwake graphile"; else order="graphile pgwake"; fi
    for mode in default batched; do
        for sys in $order; do
            [ "$sys" = graphile ] && [ $GRAPHILE = 0 ] && continue
            measure "$sys" "$mode" "$r"
        done
    done
    r=$((r + 1))
done
load1=$(cut -d' ' -f1-3 /proc/loadavg)

# Table: every round's tasks/s, the median; then the ratios of the medians.
awk -v batch="$BATCH" -v workers="$WORKERS" -v n="$N" '
    function kv(k,   i, a) { for (i = 2; i <= NF; i++) { split($i, a, "="); if (a[1] == k) return a[2] } return "" }
    function median(s,   a, m, i, j, t) {
        m = split(s, a, " ")
        for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
        return m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
    }
    { k = kv("system") "." kv("mode"); runs[k] = runs[k] (runs[k] == "" ? "" : " ") kv("per_s") }
    END {
        label["pgwake.default"] = "pgwake default (" workers " workers, pgwake_run, claim n = 1)"
        label["pgwake.batched"] = "pgwake claim_batch = " batch " (" workers " workers)"
        label["graphile.default"] = "graphile-worker 0.18 defaults (concurrency 10)"
        label["graphile.batched"] = "graphile-worker 0.18 batching (localQueue 500, batched completion)"
        print "| drain of " n " queued no-op tasks | tasks/s, each round | median |"
        print "|---|---|---:|"
        split("pgwake.default graphile.default pgwake.batched graphile.batched", ks, " ")
        for (i = 1; i <= 4; i++) if (runs[ks[i]] != "") {
            med[ks[i]] = median(runs[ks[i]])
            r = runs[ks[i]]; gsub(" ", ", ", r)
            printf "| %s | %s | %.0f |\n", label[ks[i]], r, med[ks[i]]
        }
        print ""
        if (med["graphile.default"] > 0) {
            d = med["pgwake.default"] / med["graphile.default"]
            best = med["graphile.default"]; if (med["graphile.batched"] > best) best = med["graphile.batched"]
            b = med["pgwake.batched"] / best
            printf "Ratios of the medians: **default path %.2fx** graphile-worker'"'"'s defaults (aim 1.25x: %s); ", d, (d >= 1.25 ? "met" : "missed")
            printf "**claim_batch %.2fx** the better graphile-worker mode (aim 1.25x: %s).\n", b, (b >= 1.25 ? "met" : "missed")
        }
    }' "$RES"
echo
echo "Machine: $(nproc) CPUs, $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n1), $(uname -sr), PostgreSQL $(psql -X -qAt -d postgres -c "SHOW server_version"); fsync=$(psql -X -qAt -d postgres -c 'SHOW fsync'), synchronous_commit=$(psql -X -qAt -d postgres -c 'SHOW synchronous_commit'), full_page_writes=$(psql -X -qAt -d postgres -c 'SHOW full_page_writes'); node $(node --version 2>/dev/null || echo none). Built from commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'); load average before / after: $load0 / $load1 (shared machine)."
echo "Rerun: \`sh bench/drain.sh -n $N -r $ROUNDS -b $BATCH -w $WORKERS\`"
