#!/bin/sh
# daemon_reload_stages: SIGHUP removing a stage stops its workers; adding one
# starts it; a FATAL stage whose configuration changes leaves FATAL; SIGUSR1
# reopens the worker log files (after an external rotation).
. "$ROOT/tests/lib/itest.sh"

conf() {  # conf "STAGE BLOCKS..."
    {
        echo "[pgwake]"; echo "host = stages-1"; echo "log_dir = $T/logs"; echo "recount_interval = 0"
        echo "http_listen = 127.0.0.1:$PORT"
        for st in "$@"; do
            case $st in
                keep) printf '\n[stage:keep]\ncommand = %s\nmin_workers = 1\nidle_timeout = 1h\n' "$TESTWORKER" ;;
                gone) printf '\n[stage:gone]\ncommand = %s\nmin_workers = 1\nidle_timeout = 1h\n' "$TESTWORKER" ;;
                new) printf '\n[stage:new]\ncommand = %s\nmin_workers = 1\nidle_timeout = 1h\n' "$TESTWORKER" ;;
                broken) printf '\n[stage:broken]\ncommand = %s --exit-code 1\nmax_restarts = 1\nrestart_delay = 100ms\n' "$TESTWORKER" ;;
                fixed) printf '\n[stage:broken]\ncommand = %s\nmax_restarts = 1\nrestart_delay = 100ms\n' "$TESTWORKER" ;;
            esac
        done
    } | write_conf pgwake.conf
}
PORT=$(free_port)
conf keep gone broken
start_ready pgwake.conf
wait_sql "SELECT count(*) = 2 FROM pgwake.workers WHERE state = 'alive' AND stage IN ('keep', 'gone')" 20 \
    || fail "min_workers not started"
keep_pid=$(q "SELECT pid FROM pgwake.workers WHERE stage = 'keep' AND state = 'alive'")
"$PGWAKE" enqueue -d "$TEST_DSN" broken '{}' >/dev/null
wait_sql "SELECT state = 'fatal' FROM pgwake.stage_state WHERE stage = 'broken'" 20 || fail "broken not FATAL"

note "SIGHUP: gone removed, new added, broken fixed"
conf keep new fixed
kill -HUP "$DAEMON_PID"
wait_for_log 'configuration reloaded' 10 || fail "reload not logged"
wait_sql "SELECT count(*) = 0 FROM pgwake.workers WHERE stage = 'gone' AND state IN ('starting', 'alive')" 15 \
    || fail "removed stage's worker still running"
wait_sql "SELECT count(*) = 1 FROM pgwake.workers WHERE stage = 'new' AND state = 'alive'" 15 \
    || fail "added stage did not start"
wait_sql "SELECT state = 'running' FROM pgwake.stage_state WHERE stage = 'broken'" 10 || fail "changed stage still FATAL"
wait_sql "SELECT status = 'done' FROM pgwake.tasks WHERE stage = 'broken'" 15 || fail "fixed stage did no work"
[ "$(q "SELECT pid FROM pgwake.workers WHERE stage = 'keep' AND state = 'alive'")" = "$keep_pid" ] \
    || fail "untouched stage's worker restarted"

note "SIGUSR1 after an external rotation"
mv "$T/logs/keep.log" "$T/logs/keep.log.rotated"
kill -USR1 "$DAEMON_PID"
wait_for_log 'worker log files reopened' 5 || fail "SIGUSR1 not handled"
[ -f "$T/logs/keep.log" ] || fail "keep.log not reopened"
stop_daemon
[ "$RC" = 0 ] || fail "daemon exit code $RC"
echo ok
