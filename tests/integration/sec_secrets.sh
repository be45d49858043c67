#!/bin/sh
# sec_secrets: no password in any output (issue 9, item 3). A connection
# string libpq cannot parse, from each source (-d, PGWAKE_DSN, the config's
# dsn, DATABASE_URL), is refused by run/check/status/enqueue naming its
# source, never quoted; a good string to a dead server whose error would
# echo the password (a socket folder named like it) shows "****" in the
# daemon's retries, /healthz, /status, the database-down email and webhook,
# `check` and `status`'s database fallback. A password in smtp_url is masked
# by `check`. With worker_dsn set, a real worker's environment holds none of
# the daemon's credentials (item 4).
. "$ROOT/tests/lib/itest.sh"
PW=Pw0rdXyZ7
PY=/usr/bin/python3

# no_pw FILE...: none of the files holds the password.
no_pw() {
    for _f in "$@"; do
        [ -f "$_f" ] || continue
        grep -n -- "$PW" "$_f" && fail "the password is in $_f"
    done
    return 0
}

note "a string libpq cannot parse, from each source"
BAD="postgresql://u:se%c$PW@localhost/db"
printf '[pgwake]\nhost = sec-1\nlog_dir = %s/logs\n\n[stage:a]\ncommand = /bin/true\n' "$T" \
    | write_conf plain.conf
printf '[pgwake]\nhost = sec-1\ndsn = %s\nlog_dir = %s/logs\n\n[stage:a]\ncommand = /bin/true\n' \
    "$BAD" "$T" | write_conf baddsn.conf
i=0
for how in opt env url conf; do
    for cmd in run check status enqueue; do
        i=$((i + 1))
        out="$T/bad.$how.$cmd"
        args=""
        [ "$cmd" = enqueue ] && args="a"
        case $how in
        opt) timeout 20 "$PGWAKE" $cmd -c "$T/plain.conf" -d "$BAD" $args >"$out" 2>&1; rc=$? ;;
        env) PGWAKE_DSN="$BAD" timeout 20 "$PGWAKE" $cmd -c "$T/plain.conf" $args >"$out" 2>&1; rc=$? ;;
        url) env -u PGWAKE_DSN DATABASE_URL="$BAD" timeout 20 "$PGWAKE" $cmd -c "$T/plain.conf" $args \
                 >"$out" 2>&1; rc=$? ;;
        conf) env -u PGWAKE_DSN timeout 20 "$PGWAKE" $cmd -c "$T/baddsn.conf" $args >"$out" 2>&1; rc=$? ;;
        esac
        [ "$rc" != 0 ] || fail "$cmd with a bad DSN from $how exited 0: $(cat "$out")"
        [ "$cmd" = status ] || [ "$rc" = 2 ] || fail "$cmd with a bad DSN from $how: exit $rc, not 2"
        no_pw "$out"
        case $how in
        opt) want='from -d' ;; env) want='from PGWAKE_DSN' ;; url) want='from DATABASE_URL' ;;
        conf) want='baddsn.conf:[0-9]*: \[pgwake\] dsn' ;;
        esac
        [ "$cmd" = status ] || grep -q -- "$want" "$out" || fail "$cmd ($how) does not name the source: $(cat "$out")"
        grep -q '%25' "$out" || [ "$cmd" = status ] || fail "$cmd ($how) does not say what to fix: $(cat "$out")"
    done
done
timeout 20 "$PGWAKE" run -c "$T/plain.conf" -d "$BAD" >/dev/null 2>&1
[ $? = 2 ] || fail "run with a bad -d is not a usage error (exit 2)"

note "a good string to a dead server whose error would echo the password"
start_smtp_sink
$PY "$ROOT/tests/lib/http_sink.py" --out "$T/hook.jsonl" --port-file "$T/hook.port" >"$T/hook.log" 2>&1 &
DAEMON_PIDS="$DAEMON_PIDS $!"
wait_for "[ -s '$T/hook.port' ]" 10 || fail "webhook sink did not start"
DEAD="host=$T/$PW-gone port=5432 dbname=x user=u password=$PW"
PORT=$(free_port)
write_conf dead.conf <<EOF2
[pgwake]
host = sec-dead
log_dir = $T/logs
http_listen = 127.0.0.1:$PORT

[alerts]
email_to = ops@example.com
smtp_url = smtp://127.0.0.1:$SMTP_PORT
webhook_url = http://127.0.0.1:$(cat "$T/hook.port")/hook
db_down_alert = 1s
min_interval = 1s

[stage:a]
command = $TESTWORKER
EOF2
"$PGWAKE" run -c "$T/dead.conf" -d "$DEAD" >"$T/daemon.log" 2>&1 &
DAEMON_PID=$!
DAEMON_PIDS="$DAEMON_PIDS $DAEMON_PID"
wait_for "[ \$(mail_count 'Database unreachable') -ge 1 ]" 20 || fail "no database-down email"
wait_for "grep -q 'Database unreachable' '$T/hook.jsonl'" 10 || fail "no database-down webhook"
wait_for_log '\*\*\*\*-gone' 10 || fail "the retry message does not show the masked socket path"
curl -s --noproxy '*' --max-time 10 "http://127.0.0.1:$PORT/healthz" >"$T/healthz.out"
curl -s --noproxy '*' --max-time 10 "http://127.0.0.1:$PORT/status" >"$T/status.out"
grep -q '\*\*\*\*' "$T/healthz.out" || fail "/healthz lacks the error: $(cat "$T/healthz.out")"
"$PGWAKE" status -c "$T/dead.conf" -d "$DEAD" >"$T/status-cli.out" 2>&1
"$PGWAKE" check -c "$T/dead.conf" -d "$DEAD" >"$T/check.out" 2>&1
grep -q '\*\*\*\*-gone' "$T/check.out" || fail "check does not show the masked error: $(cat "$T/check.out")"
stop_daemon
"$PGWAKE" status -c "$T/dead.conf" -d "$DEAD" >"$T/status-down.out" 2>&1
[ $? = 3 ] || fail "status with the daemon down: not exit 3"
no_pw "$T/daemon.log" "$T/healthz.out" "$T/status.out" "$T/status-cli.out" "$T/check.out" \
    "$T/status-down.out" "$T/smtp.jsonl" "$T/hook.jsonl"

note "a password in smtp_url is masked by check"
write_conf smtp.conf <<EOF2
[pgwake]
host = sec-smtp
log_dir = $T/logs

[alerts]
email_to = ops@example.com
smtp_url = smtp://alerts:$PW@127.0.0.1:$SMTP_PORT

[stage:a]
command = $TESTWORKER
EOF2
"$PGWAKE" check -c "$T/smtp.conf" -d "$TEST_DSN" >"$T/check-smtp.out" 2>&1
grep -q 'alerts:\*\*\*\*@' "$T/check-smtp.out" || fail "check does not show the masked smtp_url: $(cat "$T/check-smtp.out")"
no_pw "$T/check-smtp.out"

note "with worker_dsn, workers do not inherit the daemon's credentials"
cat >"$T/envdump" <<EOF2
#!/bin/sh
env >"$T/worker.env"
exec "$TESTWORKER"
EOF2
chmod 755 "$T/envdump"
write_conf wdsn.conf <<EOF2
[pgwake]
host = sec-env
log_dir = $T/logs
worker_dsn = $TEST_DSN

[stage:a]
command = $T/envdump
min_workers = 1
max_workers = 1
idle_timeout = 1h
heartbeat_interval = 1s
heartbeat_timeout = 5s
lease = 30s
EOF2
printf '[svc%s]\nconnect_timeout=10\n' "$PW" >"$T/svc-$PW"   # a real service, harmless
export PGPASSWORD=$PW PGPASSFILE=$T/pgpass-$PW PGSERVICE=svc$PW PGSERVICEFILE=$T/svc-$PW \
    PGSSLKEY=$T/key-$PW DATABASE_URL="postgresql://u:$PW@h/db" POSTGRES_URL="postgresql://u:$PW@h/db"
start_ready wdsn.conf
unset PGPASSWORD PGPASSFILE PGSERVICE PGSERVICEFILE PGSSLKEY DATABASE_URL POSTGRES_URL
wait_for "[ -s '$T/worker.env' ]" 20 || fail "the worker did not start"
no_pw "$T/worker.env"
for v in PGPASSWORD PGPASSFILE PGSERVICE PGSERVICEFILE PGSSLKEY DATABASE_URL POSTGRES_URL; do
    grep -q "^$v=" "$T/worker.env" && fail "the worker inherited $v"
done
grep -qx "PGWAKE_DSN=$TEST_DSN" "$T/worker.env" || fail "the worker lacks PGWAKE_DSN=worker_dsn"
id=$("$PGWAKE" enqueue -d "$TEST_DSN" a '{}')
wait_sql "SELECT status = 'done' FROM pgwake.tasks WHERE id = $id" 20 || fail "the worker did no work"
stop_daemon
[ "$RC" = 0 ] || fail "daemon exit code $RC"
echo ok
