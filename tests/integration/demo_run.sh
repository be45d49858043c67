#!/bin/sh
# demo_run: `make demo`'s script (scripts/demo) against the test's database
# (PGWAKE_DSN=$TEST_DSN): it exits 0 and ends with its "demo: OK" summary (19
# tasks, each completed exactly once, one re-execution after the SIGKILL); the
# database is left in place with the run done and no live worker; a second
# demo on the same database counts only its own run. The configuration is
# conf/demo.conf with the test's own port, log folder and absolute paths, so a
# `make demo` running beside the tests is left alone.
. "$ROOT/tests/lib/itest.sh"

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
sed -e "s|^http_listen *=.*|http_listen = 127.0.0.1:$port|" \
    -e "s|^log_dir *=.*|log_dir = $T/logs|" \
    -e "s|^directory *=.*|directory = $ROOT|" \
    -e "s|^command *= *build/|command = $BUILD/|" \
    "$ROOT/conf/demo.conf" | write_conf demo.conf
cmp -s "$ROOT/conf/demo.conf" "$T/demo.conf" && fail "the sed found nothing to rewrite in conf/demo.conf"

# demo_once N: runs the demo; its output goes to $T/demo-N.out.
demo_once() {
    start=$(date +%s)
    PGWAKE_DSN=$TEST_DSN PGWAKE_DEMO_CONF="$T/demo.conf" BUILD="$BUILD" DEMO_TIMEOUT=50 \
        timeout -k 5 90 sh "$ROOT/scripts/demo" >"$T/demo-$1.out" 2>&1
    rc=$?
    note "demo $1: exit $rc in $(( $(date +%s) - start )) s"
    [ "$rc" = 0 ] || { cat "$T/demo-$1.out"; fail "demo $1 exited $rc"; }
}

note "first demo"
BEFORE=$(for d in /tmp/pgwake-demo.*; do echo "$d"; done)
demo_once 1
summary=$(tail -n 1 "$T/demo-1.out")
echo "$summary"
echo "$summary" | grep -Eq '^demo: OK: run [0-9]+ done in [0-9.]+s: 19 tasks \(company_discovery 1, company_research 6, contact_discovery 12\), each completed exactly once; [1-9][0-9]* re-execution' \
    || fail "unexpected summary: $summary"
grep -q '! SIGKILL to company_research\.' "$T/demo-1.out" || fail "no SIGKILL shown"
grep -Eq '= task [0-9]+ redone and completed by company_research\.[0-9]+ \(attempt 2; releases = 1\)' "$T/demo-1.out" \
    || fail "the redone task was not shown"
grep -q 'stopped: idle for idle_timeout (scale to zero)' "$T/demo-1.out" || fail "no scale to zero shown"

note "the database is kept, the run done, nothing left running"
run=$(echo "$summary" | sed -n 's/^demo: OK: run \([0-9]*\) .*/\1/p')
[ "$(q "SELECT state FROM pgwake.v_runs WHERE id = $run")" = "done" ] || fail "run $run not done in the database"
[ "$(q "SELECT count(*) FROM pgwake.tasks WHERE run_id = $run AND status = 'done'")" = 19 ] || fail "not 19 done tasks"
[ "$(q "SELECT count(*) FROM pgwake.workers WHERE state IN ('starting', 'alive')")" = 0 ] || fail "live worker rows left"
# Workers of this test only (a `make demo` may be running beside it): their
# PGWAKE_DSN is this test's database.
for e in /proc/[0-9]*/environ; do
    { tr '\0' '\n' <"$e" | grep -qxF "PGWAKE_DSN=$TEST_DSN"; } 2>/dev/null \
        && fail "a demo worker is left: $(tr '\0' ' ' <"${e%/environ}/cmdline" 2>/dev/null)"
done
for d in /tmp/pgwake-demo.*; do
    [ -e "$d" ] || continue
    echo "$BEFORE" | grep -qxF "$d" || fail "the demo left its temporary folder behind: $d"
done

note "a second demo on the same database"
demo_once 2
summary2=$(tail -n 1 "$T/demo-2.out")
echo "$summary2"
run2=$(echo "$summary2" | sed -n 's/^demo: OK: run \([0-9]*\) .*/\1/p')
[ -n "$run2" ] && [ "$run2" != "$run" ] || fail "second demo: unexpected summary: $summary2"
echo "$summary2" | grep -q ': 19 tasks (' || fail "the second demo counted other runs' tasks: $summary2"
[ "$(q "SELECT count(*) FROM pgwake.runs")" = 2 ] || fail "the database was not kept between demos"
echo ok
