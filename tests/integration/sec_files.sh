#!/bin/sh
# sec_files: files another user can plant or change (issue 9, item 12). A
# symbolic link as the lock file or a worker log is not followed (the file
# it points at is untouched); a lock file another user made is refused; a
# root daemon refuses a config or env_file that group or others may write,
# or that another user owns, naming the chmod/chown that fixes it; the lock
# file and the worker logs it makes are mode 0600.
. "$ROOT/tests/lib/itest.sh"
[ "$(id -u)" = 0 ] || { echo "needs root (the checks are those of a root daemon)"; exit 77; }

conf() {  # conf NAME EXTRA-PGWAKE-LINES
    write_conf "$1" <<EOF2
[pgwake]
host = sec-files
log_dir = $T/logs
recount_interval = 0
$2

[stage:a]
command = $TESTWORKER
min_workers = 1
max_workers = 1
idle_timeout = 1h
EOF2
}
echo "precious" >"$T/victim"

note "a symbolic link as the lock file"
ln -s "$T/victim" "$T/link.lock"
conf link.conf "lock_file = $T/link.lock"
timeout 20 "$PGWAKE" run -c "$T/link.conf" -d "$TEST_DSN" >"$T/link.out" 2>&1
rc=$?
[ "$rc" = 1 ] || fail "exit $rc with a symlinked lock file: $(cat "$T/link.out")"
grep -q 'symbolic link' "$T/link.out" || fail "no reason given: $(cat "$T/link.out")"
[ "$(cat "$T/victim")" = precious ] || fail "the link's target was written"

note "a lock file another user made"
touch "$T/planted.lock" && chown nobody "$T/planted.lock"
conf planted.conf "lock_file = $T/planted.lock"
timeout 20 "$PGWAKE" run -c "$T/planted.conf" -d "$TEST_DSN" >"$T/planted.out" 2>&1
rc=$?
[ "$rc" = 1 ] || fail "exit $rc with a planted lock file: $(cat "$T/planted.out")"
grep -q 'belongs to uid 65534' "$T/planted.out" || fail "no reason given: $(cat "$T/planted.out")"

note "a symbolic link as a worker log"
mkdir -p "$T/logs" && ln -s "$T/victim" "$T/logs/a.log"
conf loglink.conf ""
timeout 20 "$PGWAKE" run -c "$T/loglink.conf" -d "$TEST_DSN" >"$T/loglink.out" 2>&1
rc=$?
[ "$rc" != 0 ] || fail "the daemon ran with a symlinked worker log"
grep -q 'symbolic link' "$T/loglink.out" || fail "no reason given: $(cat "$T/loglink.out")"
[ "$(cat "$T/victim")" = precious ] || fail "the log link's target was written"
rm "$T/logs/a.log"

note "configurations others could change"
conf open.conf ""
for how in "chmod 666" "chmod 620" "chown nobody"; do
    cp "$T/open.conf" "$T/bad.conf" && chmod 600 "$T/bad.conf"
    $how "$T/bad.conf"
    case $how in chown*) fix="chown root" ;; *) fix="chmod go-w" ;; esac
    for cmd in run check; do
        timeout 20 "$PGWAKE" $cmd -c "$T/bad.conf" -d "$TEST_DSN" >"$T/bad.out" 2>&1
        rc=$?
        [ "$rc" = 2 ] || fail "$cmd after $how: exit $rc: $(cat "$T/bad.out")"
        grep -q "run: $fix $T/bad.conf" "$T/bad.out" || fail "$cmd after $how: no fix named: $(cat "$T/bad.out")"
    done
done
echo "GREETING=hi" >"$T/env.local" && chmod 660 "$T/env.local"
conf envw.conf "env_file = $T/env.local"
"$PGWAKE" check -c "$T/envw.conf" -d "$TEST_DSN" >"$T/envw.out" 2>&1
rc=$?
[ "$rc" = 2 ] || fail "a group-writable env_file: exit $rc: $(cat "$T/envw.out")"
grep -q "run: chmod go-w $T/env.local" "$T/envw.out" || fail "no fix named: $(cat "$T/envw.out")"

note "the files the daemon makes are private"
chmod 644 "$T/env.local"
conf good.conf "lock_file = $T/good.lock
env_file = $T/env.local"
start_ready good.conf
wait_for "[ -f '$T/logs/a.log' ]" 20 || fail "no worker log"
[ "$(stat -c %a "$T/good.lock")" = 600 ] || fail "lock file mode $(stat -c %a "$T/good.lock")"
[ "$(stat -c %a "$T/logs/a.log")" = 600 ] || fail "worker log mode $(stat -c %a "$T/logs/a.log")"
stop_daemon
[ "$RC" = 0 ] || fail "daemon exit code $RC"
echo ok
