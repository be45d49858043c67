#!/bin/sh
# run.sh: runs the libFuzzer targets built by fuzz/fuzz.mk, one after the other,
# each for FUZZ_SECONDS, and prints one line per target:
#   fuzz_config   ok     60s  812345 execs (13539/s)  cov 1234  ft 5678  corpus 412
#   fuzz_notify   CRASH  SUMMARY: AddressSanitizer: ... ; input fuzz/crashes/...; log build-fuzz/logs/...
# Exits 1 when any target crashed, leaked, timed out or failed a check; the
# crashing input is kept in fuzz/crashes/ (replay: build-fuzz/fuzz_NAME FILE).
# Seeds come from fuzz/corpus/NAME (read only); what the fuzzer finds goes to
# build-fuzz/corpus/NAME, which later runs start from.
#   FUZZ_BUILD=build-fuzz FUZZ_SECONDS=5 sh fuzz/run.sh fuzz_config fuzz_units
set -u
cd "$(dirname "$0")/.." || exit 2
B=${FUZZ_BUILD:-build-fuzz}
SECS=${FUZZ_SECONDS:-60}
mkdir -p "$B/logs" fuzz/crashes
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1:allocator_may_return_null=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
[ -x /usr/bin/llvm-symbolizer ] && export ASAN_SYMBOLIZER_PATH=/usr/bin/llvm-symbolizer

max_len() {  # the largest input worth trying, per target
    case "$1" in
        fuzz_config) echo 16384 ;;  # a config file of ~80 lines
        fuzz_notify) echo 8300 ;;   # channel + a payload of up to 7999 bytes
        fuzz_units) echo 64 ;;
        *) echo 4096 ;;
    esac
}

failed=0
for t in "$@"; do
    bin="$B/$t"
    log="$B/logs/$t.log"
    if [ ! -x "$bin" ]; then
        printf '%-13s MISSING %s (build it with make -f fuzz/fuzz.mk)\n' "$t" "$bin"
        failed=1
        continue
    fi
    mkdir -p "$B/corpus/$t" "fuzz/corpus/$t"
    before=$(ls fuzz/crashes | wc -l)
    "$bin" "$B/corpus/$t" "fuzz/corpus/$t" -max_total_time="$SECS" -max_len="$(max_len "$t")" \
        -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="fuzz/crashes/$t-" >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    last=$(grep -E '^#[0-9]+' "$log" | tail -1)
    cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
    ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
    corp=$(echo "$last" | sed -n 's/.* corp: \([0-9]*\).*/\1/p')
    if [ "$rc" -eq 0 ]; then
        printf '%-13s ok    %4ss %9s execs (%s/s)  cov %s  ft %s  corpus %s\n' \
            "$t" "$SECS" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}"
        continue
    fi
    failed=1
    why=$(grep -m1 -E '^SUMMARY: |check failed|^==[0-9]+== ?ERROR: libFuzzer' "$log")
    input=$(sed -n "s/.*Test unit written to \(.*\)$/\1/p" "$log" | tail -1)
    [ -z "$input" ] && [ "$(ls fuzz/crashes | wc -l)" -gt "$before" ] && \
        input="fuzz/crashes/$(ls -t fuzz/crashes | head -1)"
    printf '%-13s CRASH %s; input %s; log %s\n' "$t" "${why:-exit $rc}" "${input:-?}" "$log"
done
exit $failed
