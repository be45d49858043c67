#!/bin/sh
# bench/plot.sh: docs/wake-latency.png, the distribution (CDF, log x axis) of
# the wake latency - COMMIT returned -> claim returned - of pgwake against a
# worker polling every second, from the raw samples (ms, one a line) in
# bench/out/:
#   polling.txt              bench/polling.sh (polling every 1 s; required)
#   wake-warm.txt            bench/wake.sh: warm idle worker, when it writes it;
#                            else pgwake-listen-warm.txt from bench/polling.sh
#                            (its minimal twin, labelled so)
#   wake-cold.txt            bench/wake.sh: cold start, when it writes it
# Uses gnuplot (bench/wake.gp); when it is missing, installs gnuplot-nox as
# root (Debian), else says so and exits 0 without a plot.
#
#   sh bench/plot.sh [-o PNG] [-i DIR]    defaults: -o docs/wake-latency.png -i bench/out
set -eu

cd "$(dirname "$0")/.."
PNG=docs/wake-latency.png
IN=bench/out
while getopts o:i:h opt; do
    case $opt in
    o) PNG=$OPTARG ;;
    i) IN=$OPTARG ;;
    *) sed -n '2,/^set /s/^# \{0,1\}//p' "$0"; [ "$opt" = h ] && exit 0; exit 2 ;;
    esac
done

if ! command -v gnuplot >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "plot.sh: installing gnuplot-nox" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gnuplot-nox >&2 ||
            { echo "plot.sh: unable to install gnuplot-nox; no plot" >&2; exit 0; }
    else
        echo "plot.sh: gnuplot is missing (as root: apt-get install -y gnuplot-nox); no plot" >&2
        exit 0
    fi
fi
[ -s "$IN/polling.txt" ] || { echo "plot.sh: no $IN/polling.txt (run bench/polling.sh first); no plot" >&2; exit 0; }

T=$(mktemp -d /tmp/pgwake-plot.XXXXXX)
trap 'rm -rf "$T"' EXIT

# cdf FILE OUT: "ms fraction" sorted; values below 0.02 ms (the axis' start;
# a claim can return a hair before the producer sees its COMMIT return, on a
# busy machine) are drawn at 0.02. Prints "n p50 p99".
cdf() {
    sort -g "$1" | awk -v out="$2" 'NF { v[++n] = $1 }
        END {
            for (i = 1; i <= n; i++) printf "%.4f %.5f\n", (v[i] < 0.02 ? 0.02 : v[i]), i / n > out
            k50 = int(0.50 * n + 0.999999); k99 = int(0.99 * n + 0.999999)
            printf "%d %s %s\n", n, fmt(v[k50]), fmt(v[k99])
        }
        function fmt(x) { return x >= 100 ? sprintf("%.0f", x) : x >= 10 ? sprintf("%.1f", x) : sprintf("%.2f", x) }'
}

ARGS="out=\"$PNG\""
i=0
add() { # add FILE TITLE COLOUR
    i=$((i + 1))
    set -- "$1" "$2" "$3" $(cdf "$1" "$T/$i.cdf")
    ARGS="$ARGS; f$i=\"$T/$i.cdf\"; t$i=\"$2 (n=$4; p50 $5 ms, p99 $6 ms)\"; c$i=\"$3\""
}
if [ -s "$IN/wake-warm.txt" ]; then
    add "$IN/wake-warm.txt" "pgwake, warm idle worker (bench/wake.sh)" "#1b7837"
    SUB="pgwake from bench/wake.sh; polling from bench/polling.sh"
elif [ -s "$IN/pgwake-listen-warm.txt" ]; then
    add "$IN/pgwake-listen-warm.txt" "pgwake, warm idle worker (bench/polling.sh listen mode)" "#1b7837"
    SUB="both from bench/polling.sh (bench/wake.sh writes no raw samples yet)"
else
    SUB="no pgwake samples found"
fi
[ -s "$IN/wake-cold.txt" ] && add "$IN/wake-cold.txt" "pgwake, cold start: no worker running (bench/wake.sh)" "#2166ac"
add "$IN/polling.txt" "worker polling pgwake.claim() every 1 s" "#c51b7d"
MACHINE="$(nproc) CPUs, Linux $(uname -r), $(date -u -r "$IN/polling.txt" +%Y-%m-%d)"
ARGS="$ARGS; n=$i; sub=\"$SUB; $MACHINE; samples below 0.02 ms drawn at 0.02\""
mkdir -p "$(dirname "$PNG")"
gnuplot -e "$ARGS" bench/wake.gp
echo "plot.sh: wrote $PNG ($i series)" >&2
