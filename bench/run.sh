#!/bin/sh
# bench/run.sh: runs every benchmark script in bench/ in turn (claim.sh when it
# is there, then wake.sh, burst.sh, idle.sh, then any other bench/*.sh) and
# rewrites the sections "## Wake latency", "## Notification burst",
# "## Idle cost" and "## Python worker" of docs/benchmarks.md with the figures of this run. Every other
# section of that file (e.g. "## Claim throughput", which claim.sh's owner
# maintains) is kept as it is; a missing section is appended. In a section
# of ours, a hand-written analysis after a line "<!-- kept by bench/run.sh -->"
# is kept too.
#
#   sh bench/run.sh [-n] [NAME...]
#     NAME: claim, wake, burst, idle, ... (default: every script present)
#     -n:   print the figures only, leave docs/benchmarks.md alone
#   Each script's Markdown and log are kept in $BENCH_OUT (default: a new
#   /tmp/pgwake-bench.XXXXXX). `make bench` runs this. Takes about 40 minutes
#   plus claim.sh's time (health.sh ~15, polling.sh ~13).
#   Environment of the scripts that use bench/lib/daemon.sh (wake, burst,
#   idle, health, polling, python_worker, release_sql): BUILD
#   (default build); BENCH_SRC=head or a commit: build that commit in
#   /tmp/pgwake-bench-src-REV instead of this tree (others' unfinished work
#   stays out of the figures); BENCH_SRC_DIR=DIR: build the sources in DIR
#   (a patched copy, to try a change); KEEP_BENCH_DIR=1 keeps each run's
#   folder (configs, daemon log, worker output).
set -u

cd "$(dirname "$0")/.."
WRITE=1
while getopts nh opt; do
    case $opt in
    n) WRITE=0 ;;
    *) sed -n '2,/^set /s/^# \{0,1\}//p' "$0"; [ "$opt" = h ] && exit 0; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
OUT=${BENCH_OUT:-$(mktemp -d /tmp/pgwake-bench.XXXXXX)}
mkdir -p "$OUT"
export BENCH_OUT="$OUT" # polling.sh reads this run's wake.md from it
DOC=docs/benchmarks.md

# The scripts in order: the known ones first, then any other.
ALL=""
for s in claim wake burst idle health polling; do [ -f "bench/$s.sh" ] && ALL="$ALL $s"; done
for f in bench/*.sh; do
    s=$(basename "$f" .sh)
    case " $ALL run plot report " in *" $s "*) ;; *) ALL="$ALL $s" ;; esac
done
WANT=${*:-$ALL}

section_of() {
    case $1 in
    wake) echo "Wake latency" ;;
    burst) echo "Notification burst" ;;
    idle) echo "Idle cost" ;;
    python_worker) echo "Python worker" ;;
    *) echo "" ;;
    esac
}

# replace_section TITLE FILE: the body of "## TITLE" in $DOC becomes FILE.
# Whatever follows a line "<!-- kept by bench/run.sh -->" in that section
# (a hand-written analysis) stays, after the new figures.
replace_section() {
    [ -f "$DOC" ] || printf '# pgwake benchmarks\n\nFigures measured by the scripts in bench/ (`make bench` or `sh bench/run.sh`) on the project'"'"'s machines. They are printed, never asserted.\n' >"$DOC"
    awk -v title="## $1" -v body="$2" -v marker="<!-- kept by bench/run.sh -->" '
        function flush(   line) {
            print title
            print ""
            while ((getline line < body) > 0) print line
            close(body)
            print ""
            if (kept != "") printf "%s", kept
            done = 1; insec = 0; kept = ""; keeping = 0
        }
        insec && /^## / { flush() }
        $0 == title { insec = 1; next }
        insec { if ($0 == marker) keeping = 1; if (keeping) kept = kept $0 "\n"; next }
        { print; last = $0 }
        END {
            if (insec) flush()
            else if (!done) { if (last != "") print ""; flush() }
        }' "$DOC" >"$DOC.tmp.$$" && mv "$DOC.tmp.$$" "$DOC"
}

FAILED=""
for s in $WANT; do
    [ -f "bench/$s.sh" ] || { echo "run.sh: no bench/$s.sh" >&2; FAILED="$FAILED $s"; continue; }
    echo "== bench/$s.sh (log: $OUT/$s.log)" >&2
    t0=$(date +%s)
    if sh "bench/$s.sh" >"$OUT/$s.md" 2>"$OUT/$s.log"; then
        echo "== bench/$s.sh done in $(($(date +%s) - t0)) s" >&2
        cat "$OUT/$s.md"
        echo
        title=$(section_of "$s")
        if [ "$WRITE" = 1 ] && [ -n "$title" ]; then
            replace_section "$title" "$OUT/$s.md"
            echo "== $DOC: section \"$title\" rewritten" >&2
        fi
    else
        echo "== bench/$s.sh FAILED (exit $?); the tail of its log:" >&2
        tail -n 20 "$OUT/$s.log" >&2
        FAILED="$FAILED $s"
    fi
done
# report.sh writes the header and the health and polling sections, and the plot.
if [ "$WRITE" = 1 ] && [ -f bench/report.sh ]; then
    sh bench/report.sh "$OUT" || FAILED="$FAILED report"
fi
echo "== results in $OUT" >&2
[ -z "$FAILED" ] || { echo "run.sh: failed:$FAILED" >&2; exit 1; }
