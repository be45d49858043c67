#!/bin/sh
# bench/report.sh: the header of docs/benchmarks.md (the machine: CPUs, CPU
# model, memory, kernel, PostgreSQL; how to rerun; the sections below), the
# sections that bench/health.sh and bench/polling.sh wrote into
# DIR/health.md and DIR/polling.md ("## Health: crash and missed-heartbeat to
# release", "## Daemon CPU with 500 workers", "## Polling baseline"; each
# replaced when present, appended when new; no other section is touched), and
# docs/wake-latency.png (bench/plot.sh).
#
#   sh bench/report.sh [-n] [DIR]
#     DIR: where the scripts' Markdown is (default bench/out, where they
#          always leave a copy)
#     -n:  print the header only, change nothing
set -eu

cd "$(dirname "$0")/.."
WRITE=1
while getopts nh opt; do
    case $opt in
    n) WRITE=0 ;;
    *) sed -n '2,/^set /s/^# \{0,1\}//p' "$0"; [ "$opt" = h ] && exit 0; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
IN=${1:-bench/out}
DOC=${BENCH_DOC:-docs/benchmarks.md} # BENCH_DOC: another file, e.g. to try this script
OWN="Health: crash and missed-heartbeat to release|Daemon CPU with 500 workers|Polling baseline"

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PGV=$("$PG_BIN/postgres" --version 2>/dev/null | sed 's/^postgres (PostgreSQL) //') || PGV="not found in $PG_BIN"
CPU=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
MEM=$(awk '/^MemTotal:/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)
OS=$(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")

header() {
    echo "# pgwake benchmarks"
    echo
    echo "Figures measured by the scripts in bench/ on the project's machines. They are printed, never asserted (tests keep ceilings at least 10 times the aims, SPEC section 9)."
    echo
    echo "Machine: $(nproc) CPUs ($CPU), $MEM of memory, ${OS:-Linux} with Linux $(uname -r), PostgreSQL $PGV, in a throwaway cluster per script (tests/lib/pgtmp.sh: unix socket, fsync off unless a script says otherwise). The machine is shared with other engineers' builds, tests and benchmarks, so every figure is noisy: each script runs its figures at least twice and shows the spread, and its section ends with the load average around its run."
    echo
    echo "Rerun everything: \`make bench\` (builds, then \`sh bench/run.sh\`: every bench/*.sh in turn, each section rewritten with the new figures). One script: \`sh bench/NAME.sh\`, with \`-h\` for its options; each section ends with the exact command that produced it. \`sh bench/report.sh\` rewrites this header and the health and polling sections from bench/out/, and \`sh bench/plot.sh\` redraws docs/wake-latency.png."
    echo
    if [ -f "$DOC" ]; then
        _sections=$(awk '/^## / { sub(/^## /, ""); print }' "$DOC")
        if [ -n "$_sections" ]; then
            echo "Sections:"
            echo
            echo "$_sections" | while IFS= read -r t; do
                # GitHub's anchors: lower case, punctuation dropped, spaces -> dashes
                a=$(printf '%s' "$t" | tr 'A-Z' 'a-z' | sed 's/[^a-z0-9 _-]//g; s/ /-/g')
                echo "- [$t](#$a)"
            done
            echo
        fi
    fi
}

if [ "$WRITE" = 0 ]; then
    header
    exit 0
fi

[ -f "$DOC" ] || printf '# pgwake benchmarks\n' >"$DOC"

# replace_section TITLE FILE: the body of "## TITLE" in $DOC becomes FILE
# (appended at the end when there is no such section).
replace_section() {
    awk -v title="## $1" -v body="$2" '
        function emit(   line) {
            print title
            print ""
            while ((getline line < body) > 0) print line
            close(body)
            print ""
            done = 1
        }
        $0 == title { emit(); skip = 1; next }
        skip && /^## / { skip = 0 }
        !skip { print }
        END { if (!done) { if (last != "") print ""; emit() } }
        { last = $0 }' "$DOC" >"$DOC.tmp.$$" && mv "$DOC.tmp.$$" "$DOC"
}

T=$(mktemp -d /tmp/pgwake-report.XXXXXX)
trap 'rm -rf "$T"' EXIT
for f in "$IN/health.md" "$IN/polling.md"; do
    [ -s "$f" ] || { echo "report.sh: no $f (its script has not run)" >&2; continue; }
    # Split into sections: "## TITLE" lines start them; bodies trimmed of blank edges.
    awk -v dir="$T" '
        /^## / { if (out) close(out); n++; out = dir "/s" n; title = substr($0, 4); print title > (dir "/t" n); close(dir "/t" n); next }
        out { print > out }' "$f"
    for t in "$T"/t*; do
        [ -f "$t" ] || continue
        title=$(cat "$t")
        body=${t%/t*}/s${t##*/t}
        case "|$OWN|" in
        *"|$title|"*)
            awk 'NF { while (blank > 0 && started) { print ""; blank-- } print; started = 1; blank = 0; next }
                 { blank++ }' "$body" >"$body.trim"
            replace_section "$title" "$body.trim"
            echo "report.sh: $DOC: section \"$title\" from $f" >&2
            ;;
        *) echo "report.sh: $f: section \"$title\" is not one of ours; left alone" >&2 ;;
        esac
        rm -f "$t" "$body" "$body.trim"
    done
done

# The picture the polling section shows.
sh bench/plot.sh -i "$IN" -o "$(dirname "$DOC")/wake-latency.png" || echo "report.sh: bench/plot.sh failed; the picture is unchanged" >&2

# The header: everything before the first "## " line.
header >"$T/header"
awk -v h="$T/header" 'BEGIN { while ((getline line < h) > 0) print line } /^## / { on = 1 } on' "$DOC" >"$DOC.tmp.$$" &&
    mv "$DOC.tmp.$$" "$DOC"
echo "report.sh: $DOC: header rewritten" >&2
header
