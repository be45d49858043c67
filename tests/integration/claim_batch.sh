#!/bin/sh
# claim_batch: a stage's claim_batch reaches its workers as PGWAKE_CLAIM_BATCH
# and the C library's pgwake_run claims that many tasks in one statement (all
# leased at once, by one worker), each completed once; the default stays 1.
. "$ROOT/tests/lib/itest.sh"

write_conf pgwake.conf <<EOF2
[pgwake]
host = batch-1
log_dir = $T/logs

[stage:batched]
command = $TESTWORKER
max_workers = 1
claim_batch = 4

[stage:single]
command = $TESTWORKER
max_workers = 1
EOF2
start_ready pgwake.conf
leased_max() { # STAGE: the most tasks of STAGE leased at once while they run
    _m=0
    for _i in $(seq 1 60); do
        _n=$(q "SELECT count(*) FROM pgwake.tasks WHERE stage = '$1' AND status = 'leased'")
        [ "$_n" -gt "$_m" ] && _m=$_n
        [ "$(q "SELECT count(*) FROM pgwake.tasks WHERE stage = '$1' AND status <> 'done'")" = 0 ] && break
        sleep 0.05
    done
    echo "$_m"
}
for s in batched single; do
    q "INSERT INTO pgwake.tasks (stage, payload) SELECT '$s', '{\"sleep_ms\": 300}' FROM generate_series(1, 4)" >/dev/null
    wait_sql "SELECT count(*) > 0 FROM pgwake.tasks WHERE stage = '$s' AND status = 'leased'" 10 || fail "$s: nothing claimed"
    m=$(leased_max $s)
    wait_sql "SELECT count(*) = 4 FROM pgwake.tasks WHERE stage = '$s' AND status = 'done' AND attempts = 1" 15 \
        || fail "$s: tasks not done once each"
    note "$s: at most $m task(s) leased at once"
    eval "max_$s=$m"
done
[ "$max_batched" = 4 ] || fail "claim_batch = 4: $max_batched leased at once, expected 4"
[ "$max_single" = 1 ] || fail "default claim_batch: $max_single leased at once, expected 1"
[ "$(grep -c '^claim ' "$TESTWORKER_LOG")" = 8 ] || fail "not 8 claims logged"
[ "$(grep -c '^complete .* ok ' "$TESTWORKER_LOG")" = 8 ] || fail "not 8 completions logged"
stop_daemon
[ "$RC" = 0 ] || fail "daemon exit code $RC"
echo ok
