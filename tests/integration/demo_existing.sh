#!/bin/sh
# demo_existing: `make demo-existing`'s script (scripts/demo-existing) against
# the test's database: the example pipeline's Python workers over their own
# tables, a SIGKILL mid-task released by release_sql, every item done once,
# back to zero workers; it exits 0 with its "demo-existing: OK" summary.
. "$ROOT/tests/lib/itest.sh"
/usr/bin/python3 -c 'import psycopg' 2>/dev/null || { echo "python3-psycopg missing"; exit 77; }

note "pgwake import of the example's supervisor.conf: the first draft of its pgwake.conf"
(cd "$ROOT/examples/existing-pipeline" && "$PGWAKE" import supervisord supervisor.conf) >"$T/imported.conf" \
    || fail "import of supervisor.conf failed"
[ "$(grep -c '^\[stage:' "$T/imported.conf")" = 4 ] || fail "import: not 4 stages: $(cat "$T/imported.conf")"
for s in company_discovery company_research contact_discovery; do
    grep -q "^\[stage:$s\]" "$ROOT/examples/existing-pipeline/pgwake.conf" || fail "example config lacks $s"
    grep -A3 "^\[stage:$s\]" "$T/imported.conf" | grep -q "^command = /usr/bin/python3 before/$s.py" \
        || fail "import: $s command"
done

start=$(date +%s)
PGWAKE_DSN=$TEST_DSN BUILD="$BUILD" DEMO_TIMEOUT=60 timeout -k 5 100 sh "$ROOT/scripts/demo-existing" \
    >"$T/demo.out" 2>&1
rc=$?
note "exit $rc in $(( $(date +%s) - start )) s"
[ "$rc" = 0 ] || { cat "$T/demo.out"; fail "demo-existing exited $rc"; }
summary=$(tail -n 1 "$T/demo.out")
echo "$summary"
echo "$summary" | grep -Eq '^demo-existing: OK: run [0-9]+ done: 6 companies and 12 contacts, each done exactly once; [1-9][0-9]* re-execution' \
    || fail "unexpected summary: $summary"
grep -Eq '= its lease in pm_pipeline.company_candidates released [0-9]+ ms later' "$T/demo.out" \
    || fail "the release was not shown"
run=$(echo "$summary" | sed -n 's/^demo-existing: OK: run \([0-9]*\) .*/\1/p')
[ "$(q "SELECT count(*) FROM pm_pipeline.company_candidates WHERE run_id = $run AND status = 'done'")" = 6 ] \
    || fail "run $run not done in the database"
[ "$(q "SELECT count(*) FROM pgwake.workers WHERE state IN ('starting', 'alive')")" = 0 ] || fail "live workers left"
[ "$(q "SELECT count(*) FROM pgwake.release_failures")" = 0 ] || fail "release failures left"
echo ok
