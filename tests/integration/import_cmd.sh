#!/bin/sh
# import_cmd: `pgwake import` end to end with the real binary. A supervisord
# file and a PM2 file that start the real test worker are imported; the
# output passes `pgwake check` and a real daemon runs work with it. The
# sample files of the unit tests import into configurations `check` accepts
# (exit 1 at most: their commands and users are not on this machine), and
# match what supervisord's own parser makes of them (argv, environment).
# Bad input exits 2 naming the file and line.
. "$ROOT/tests/lib/itest.sh"
DATA="$ROOT/tests/unit/data/import"

note "a supervisord file that starts the test worker"
mkdir -p "$T/app"
cat >"$T/app/supervisord.conf" <<EOF2
[supervisord]
logfile=/var/log/supervisor/supervisord.log

[program:Test-Worker]
command=$TESTWORKER
    -v
directory=%(here)s
environment=GREETING="a, b",TESTWORKER_LOG="%(ENV_TESTWORKER_LOG)s"
process_name=%(program_name)s_%(process_num)d
numprocs=2
stopwaitsecs=5
startretries=2
stdout_logfile=/var/log/app/worker.log

[group:app]
programs=Test-Worker
EOF2
"$PGWAKE" import supervisord "$T/app/supervisord.conf" >"$T/imported.conf" 2>"$T/err" \
    || fail "import exit $?: $(cat "$T/err")"
cat "$T/imported.conf"
grep -q '^\[stage:test-worker\]$' "$T/imported.conf" || fail "stage not named test-worker"
grep -q '^; named test-worker: "Test-Worker" is not a valid stage name' "$T/imported.conf" \
    || fail "renaming not commented"
grep -q '^max_workers = 2$' "$T/imported.conf" || fail "numprocs not carried over"
grep -q '^stop_timeout = 5s$' "$T/imported.conf" || fail "stopwaitsecs not carried over"
grep -q '^max_restarts = 3$' "$T/imported.conf" || fail "startretries not carried over"
grep -q "^directory = $T/app\$" "$T/imported.conf" || fail "%(here)s not expanded"
grep -q '^; stdout_logfile = /var/log/app/worker.log not carried over' "$T/imported.conf" \
    || fail "log file not commented"
grep -q '^; \[group:app\] (line 15) not carried over' "$T/imported.conf" || fail "group not commented"
write_conf pgwake.conf <"$T/imported.conf"
"$PGWAKE" check -c "$T/pgwake.conf" -d "$TEST_DSN" >"$T/out" 2>&1
rc=$?
cat "$T/out"
[ "$rc" = 0 ] || fail "check of the imported configuration: exit $rc"
grep -q '^ok  *stage test-worker: .*(max_workers 2' "$T/out" || fail "stage not checked"

note "the imported configuration runs work"
start_ready pgwake.conf
id=$("$PGWAKE" enqueue -d "$TEST_DSN" test-worker '{"sleep_ms": 10}') || fail "enqueue failed"
wait_sql "SELECT status = 'done' FROM pgwake.tasks WHERE id = $id" 15 || fail "task $id not done"
stop_daemon
[ "$RC" = 0 ] || fail "daemon exit code $RC"

note "a PM2 ecosystem file that starts the test worker"
cat >"$T/app/ecosystem.json" <<EOF2
{"apps": [{"name": "pm2_worker", "script": "$TESTWORKER", "args": ["-v"], "cwd": "$T/app",
           "instances": 3, "kill_timeout": 2500, "env": {"MODE": "x y"},
           "out_file": "/var/log/pm2/out.log"}]}
EOF2
"$PGWAKE" import pm2 "$T/app/ecosystem.json" >"$T/pm2-import.out" 2>"$T/err" || fail "pm2 import: $(cat "$T/err")"
write_conf pm2.conf <"$T/pm2-import.out"
cat "$T/pm2.conf"
grep -q '^kill_timeout = 2500ms$' "$T/pm2.conf" || fail "kill_timeout not carried over"
grep -q '^environment = MODE="x y"$' "$T/pm2.conf" || fail "env not carried over"
"$PGWAKE" check -c "$T/pm2.conf" -d "$TEST_DSN" >"$T/out" 2>&1 || fail "check of the PM2 import: $(cat "$T/out")"
grep -q '^ok  *stage pm2_worker: .*(max_workers 3' "$T/out" || fail "pm2 stage not checked"

note "the unit tests' sample files"
export APP_ROOT=/srv/api
for f in "$DATA"/*.conf "$DATA"/*.json; do
    case "$(basename "$f")" in bad_*) continue ;; esac
    kind=supervisord
    case "$f" in *.json) kind=pm2 ;; esac
    "$PGWAKE" import "$kind" "$f" >"$T/sample-import.out" 2>"$T/err" || fail "$f: $(cat "$T/err")"
    write_conf sample.conf <"$T/sample-import.out"
    "$PGWAKE" check -c "$T/sample.conf" -d "$TEST_DSN" >"$T/out" 2>&1
    rc=$?
    [ "$rc" -le 1 ] || fail "$f: the imported configuration is refused (exit $rc): $(cat "$T/out")"
    if [ "$kind" = supervisord ] && [ -x /usr/bin/python3 ]; then
        /usr/bin/python3 "$ROOT/tests/lib/import_diff.py" "$f" "$T/sample.conf"
        rc=$?
        [ "$rc" = 0 ] || [ "$rc" = 77 ] || fail "$f: pgwake and supervisord disagree"
    fi
done

note "bad input: exit 2 with the file and line"
"$PGWAKE" import supervisord "$DATA/bad_quote.conf" >"$T/out" 2>"$T/err"
rc=$?
[ "$rc" = 2 ] || fail "bad file: exit $rc"
[ ! -s "$T/out" ] || fail "bad file: something on stdout"
grep -q 'bad_quote.conf:2: \[program:x\] command: no closing quotation' "$T/err" || fail "bad file: $(cat "$T/err")"
"$PGWAKE" import pm2 "$DATA/bad_json.json" 2>"$T/err"; rc=$?
[ "$rc" = 2 ] && grep -q 'bad_json.json:3:36: ' "$T/err" || fail "bad JSON: exit $rc: $(cat "$T/err")"
"$PGWAKE" import pm2 "$DATA/ecosystem.config.js" 2>"$T/err"; rc=$?
[ "$rc" = 2 ] && grep -q "node -e" "$T/err" || fail "JS ecosystem: exit $rc: $(cat "$T/err")"
"$PGWAKE" import supervisord "$T/none.conf" 2>"$T/err"; rc=$?
[ "$rc" = 2 ] && grep -q "unable to open $T/none.conf: No such file" "$T/err" || fail "missing file: exit $rc"
"$PGWAKE" import systemd "$T/none.conf" 2>"$T/err"; rc=$?
[ "$rc" = 2 ] || fail "unknown kind: exit $rc"
note "a command no configuration line can hold: exit 2, nothing on stdout"
{ printf '[program:a]\ncommand=/bin/true\n[program:b]\ncommand=/bin/echo '; head -c 300 /dev/zero | tr '\0' x; echo; } >"$T/long.conf"
"$PGWAKE" import supervisord "$T/long.conf" >"$T/out" 2>"$T/err"; rc=$?
[ "$rc" = 2 ] && [ ! -s "$T/out" ] && grep -q 'long.conf: \[program:b\]: an argument of the command is too long' "$T/err" \
    || fail "long argument: exit $rc: $(cat "$T/err")"
"$PGWAKE" import supervisord "$DATA/django_celery.conf" >/dev/full 2>"$T/err"; rc=$?
[ "$rc" = 1 ] && grep -q 'unable to write the configuration' "$T/err" || fail "full disk: exit $rc"
"$PGWAKE" help import | grep -q 'pgwake import supervisord|pm2 FILE' || fail "no help text"
echo ok
