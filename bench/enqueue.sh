#!/bin/sh
# bench/enqueue.sh: what the NOTIFY of pgwake's statement trigger costs at
# commit. C concurrent clients (pgbench) each insert single tasks, one per
# transaction, on a throwaway cluster with fsync and synchronous_commit on:
#   trigger: a plain INSERT INTO pgwake.tasks (the trigger's pg_notify)
#   replica: the same with session_replication_role = replica (no trigger,
#            no NOTIFY: what the queue would cost without wake-ups)
#   batch10: the trigger, 10 rows per INSERT (one NOTIFY per statement)
# Rounds alternate the modes; prints a Markdown table of rows/s and the ratio.
#
#   sh bench/enqueue.sh [-c CLIENTS] [-t SECONDS] [-r ROUNDS]   (defaults 8, 10, 3)
set -eu

cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
CLIENTS=8 SECS=10 ROUNDS=3
while getopts c:t:r:h opt; do
    case $opt in
    c) CLIENTS=$OPTARG ;;
    t) SECS=$OPTARG ;;
    r) ROUNDS=$OPTARG ;;
    *) sed -n '2,/^set /s/^# \{0,1\}//p' "$0" | sed '$d'; [ "$opt" = h ] && exit 0; exit 2 ;;
    esac
done
make -s "$BUILD/pgwake" >&2
. tests/lib/pgtmp.sh
WORK=$(mktemp -d /tmp/pgwake-enqueue.XXXXXX)
cleanup() { pgtmp_stop; rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
PGTMP_DURABLE=1 pgtmp_start
psql -X -q -d postgres -c "CREATE DATABASE enq"
"$BUILD/pgwake" migrate -d "$PGTMP_DSN dbname=enq" >&2
echo "INSERT INTO pgwake.tasks (stage, payload) VALUES ('enq', '{}');" >"$WORK/one.sql"
echo "INSERT INTO pgwake.tasks (stage, payload) SELECT 'enq', '{}' FROM generate_series(1, 10);" >"$WORK/ten.sql"
RES=$WORK/res
: >"$RES"
load0=$(cut -d' ' -f1-3 /proc/loadavg)
r=1
while [ $r -le "$ROUNDS" ]; do
    for mode in trigger replica batch10; do
        case $mode in
        trigger) f=one.sql rows=1 opts= ;;
        replica) f=one.sql rows=1 opts="-c session_replication_role=replica" ;;
        batch10) f=ten.sql rows=10 opts= ;;
        esac
        psql -X -q -d enq -c "TRUNCATE pgwake.tasks CASCADE" -c CHECKPOINT
        tps=$(PGOPTIONS="$opts" pgbench -n -c "$CLIENTS" -j "$CLIENTS" -T "$SECS" -f "$WORK/$f" enq 2>&1 |
            sed -n 's/^tps = \([0-9.]*\) .*/\1/p')
        echo "$mode $r $tps $rows" | tee -a "$RES" >&2
    done
    r=$((r + 1))
done
load1=$(cut -d' ' -f1-3 /proc/loadavg)
awk -v c="$CLIENTS" '
    function median(s,   a, m, i, j, t) {
        m = split(s, a, " ")
        for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
        return m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
    }
    { v[$1] = v[$1] (v[$1] == "" ? "" : " ") sprintf("%.0f", $3 * $4) }
    END {
        l["trigger"] = "single-row INSERT, statement trigger (NOTIFY per commit)"
        l["replica"] = "single-row INSERT, session_replication_role = replica (no NOTIFY)"
        l["batch10"] = "10-row INSERT, statement trigger (one NOTIFY per 10 rows)"
        print "| " c " clients, one transaction per statement | rows/s, each round | median |"
        print "|---|---|---:|"
        split("trigger replica batch10", k, " ")
        for (i = 1; i <= 3; i++) { m[k[i]] = median(v[k[i]]); s = v[k[i]]; gsub(" ", ", ", s); printf "| %s | %s | %.0f |\n", l[k[i]], s, m[k[i]] }
        printf "\nRatio of the medians, with NOTIFY / without: **%.2f**; 10-row statements / single rows (both with NOTIFY): %.2f.\n", m["trigger"] / m["replica"], m["batch10"] / m["trigger"]
    }' "$RES"
echo
echo "Machine: $(nproc) CPUs, $(uname -sr), PostgreSQL $(psql -X -qAt -d postgres -c 'SHOW server_version'); fsync=$(psql -X -qAt -d postgres -c 'SHOW fsync'), synchronous_commit=$(psql -X -qAt -d postgres -c 'SHOW synchronous_commit'); load average before / after: $load0 / $load1 (shared machine)."
echo "Rerun: \`sh bench/enqueue.sh -c $CLIENTS -t $SECS -r $ROUNDS\`"
