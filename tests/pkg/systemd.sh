#!/bin/sh
# tests/pkg/systemd.sh DEBDIR: the packaged pgwake under a real systemd, in a
# booted fresh bookworm container with its own PostgreSQL 15. `make test-systemd`.
# Checks: start is active only after READY (activating while the database is
# down); the journal has the daemon's lines; what a worker can write under the
# unit's sandbox, and that a ReadWritePaths= drop-in opens its directory;
# reload is SIGHUP; the watchdog restarts a SIGSTOPped daemon; stop ends within
# TimeoutStopSec with no worker left and no lease held.
# Exit 0 pass, 1 fail, 77 cannot run here. KEEP_TEST_DIR=1 keeps the logs.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DEBS=$(cd "${1:-$ROOT/build}" && pwd)
. "$ROOT/tests/pkg/lib.sh"
pkg_can_run
ls "$DEBS"/pgwake_*.deb >/dev/null 2>&1 || pkg_die "no pgwake_*.deb in $DEBS (run make deb)"

W=$(mktemp -d /tmp/pgwake-sd.XXXXXX)
cleanup() {
    if [ -n "${PKG_INIT:-}" ]; then
        pkg_exec journalctl --no-pager -u pgwake >"$W/journal.log" 2>&1
        cp "$root/var/log/pgwake/"*.log "$W/" 2>/dev/null
    fi
    pkg_poweroff
    pkg_unmount "$W"
    if [ "${KEEP_TEST_DIR:-0}" = 1 ]; then echo "kept $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ok() { echo "ok - $*"; }
in_c() { pkg_exec sh -c "$1"; }
fail() {
    pkg_log "FAIL: $*"
    pkg_exec journalctl --no-pager -u pgwake -n 40 >&2
    exit 1
}
sql() { pkg_exec su pgwake -s /bin/sh -c "psql -X -qAt -v ON_ERROR_STOP=1 -d pgwake -c \"$1\""; }
# wait_c CMD SECONDS: until CMD succeeds in the container, every 0.2 s.
wait_c() {
    _n=$(($2 * 5))
    while [ "$_n" -gt 0 ]; do
        in_c "$1" >/dev/null 2>&1 && return 0
        sleep 0.2
        _n=$((_n - 1))
    done
    return 1
}
journal_has() { in_c "journalctl --no-pager -u pgwake -o cat | grep -Eq -- '$1'"; }
now() { date +%s; }

lower=$(pkg_rootfs "$PKG_BOOT_PACKAGES") || exit 1
root=$(pkg_overlay "$lower" "$W") || exit $?
mkdir -p "$root/debs" "$root/srv/app"
cp "$DEBS"/pgwake_*.deb "$DEBS"/python3-pgwake_*.deb "$root/debs/" \
    || pkg_die "python3-pgwake_*.deb missing in $DEBS"
cat >"$root/srv/app/pyworker.py" <<'PY'
import sys
import pgwake

def handle(task, cur):
    return {"python": True, "task": task.id}

sys.exit(pgwake.run(handle))
PY
cp "$ROOT/tests/pkg/writer_worker.sh" "$root/srv/app/writer.sh"
pkg_boot "$root" "$W"
ok "booted a fresh bookworm container"

# ---- install and configure: the database, the schema, one stage whose worker
# lives in /srv/app (an application checkout) and writes there.
in_c 'dpkg -i /debs/*.deb &&
      su postgres -c "createuser pgwake && createdb -O pgwake pgwake" &&
      su pgwake -s /bin/sh -c "pgwake migrate -d postgresql:///pgwake" &&
      install -d -o pgwake -g pgwake /srv/app/data &&
      sed -i "s|^; dsn = .*|dsn = postgresql:///pgwake|" /etc/pgwake/pgwake.conf &&
      printf "\n[stage:writer]\ncommand = /bin/sh /srv/app/writer.sh\ndirectory = /srv/app\nmax_workers = 2\n" >>/etc/pgwake/pgwake.conf &&
      printf "\n[stage:py]\ncommand = /usr/bin/python3 /srv/app/pyworker.py\n" >>/etc/pgwake/pgwake.conf &&
      su pgwake -s /bin/sh -c "pgwake check -c /etc/pgwake/pgwake.conf"' >"$W/setup.log" 2>&1 \
    || { cat "$W/setup.log"; fail "install and configure"; }
ok "installed, schema migrated, stage writer configured ($(tail -n 1 "$W/setup.log"))"

# ---- start: activating (not active) while the database is down; active after READY
in_c 'systemctl stop postgresql@15-main && systemctl start --no-block pgwake' \
    || fail "systemctl start --no-block"
wait_c 'systemctl show -P StatusText pgwake | grep -q "waiting for database"' 20 \
    || fail "no STATUS=waiting for database while PostgreSQL is down"
sleep 2
st=$(in_c 'systemctl is-active pgwake')
[ "$st" = activating ] || fail "with the database down the service is '$st', not activating"
journal_has 'ready' && fail "a ready line with the database down"
ok "database down: the service is activating, StatusText 'waiting for database', no ready line"
in_c 'systemctl start postgresql@15-main' || fail "starting PostgreSQL"
t0=$(now)
wait_c '[ "$(systemctl is-active pgwake)" = active ]' 60 || fail "not active 60 s after PostgreSQL came back"
journal_has 'ready: serving 2 stage' || fail "active without the daemon's ready line"
ok "active $(( $(now) - t0 )) s after PostgreSQL came back, after the daemon's ready line"
journal_has 'pgwake starting: 2 stage' && ok "the daemon's lines are in the journal (journalctl -u pgwake)" \
    || fail "the daemon's start line is not in the journal"
in_c 'curl -fsS http://127.0.0.1:6464/healthz' >/dev/null || fail "/healthz not 200 once active"
ok "/healthz answers 200"

# ---- a Python worker (python3-pgwake) under the packaged daemon
idp=$(sql "SELECT pgwake.enqueue('py')") || fail "enqueue"
wait_c "su pgwake -s /bin/sh -c \"psql -qAt -d pgwake -c \\\"SELECT status FROM pgwake.tasks WHERE id = $idp\\\"\" | grep -qx done" 30 \
    || fail "the Python worker did not complete task $idp: $(cat "$root/var/log/pgwake/py.log" 2>/dev/null | tail -5)"
[ "$(sql "SELECT result ->> 'python' FROM pgwake.tasks WHERE id = $idp")" = true ] || fail "task $idp has no Python result"
ok "python3-pgwake: a pgwake.run worker completed task $idp under the packaged daemon"

# ---- what a worker may write under the shipped unit
id1=$(sql "SELECT pgwake.enqueue('writer')") || fail "enqueue"
wait_c "su pgwake -s /bin/sh -c \"psql -qAt -d pgwake -c \\\"SELECT status FROM pgwake.tasks WHERE id = $id1\\\"\" | grep -qx dead" 30 \
    || fail "task $id1 (shipped unit) did not end"
err=$(sql "SELECT last_error FROM pgwake.tasks WHERE id = $id1")
case "$err" in
*"./data/task-$id1"*"Read-only file system"*) ;;
*) fail "the worker's own directory should be read-only under ProtectSystem=strict; got: $err" ;;
esac
case "$err" in *"/var/lib/pgwake"*|*"/tmp/writer"*) fail "state folder or /tmp not writable: $err" ;; esac
in_c "grep -q 'wrote /var/lib/pgwake/writer/task-$id1' /var/log/pgwake/writer.log &&
      grep -q 'wrote /tmp/writer/task-$id1' /var/log/pgwake/writer.log" \
    || fail "the worker's log lacks its writes to /var/lib/pgwake and /tmp"
ok "shipped unit: the worker writes /var/lib/pgwake and /tmp; its own directory /srv/app is read-only (documented)"

in_c 'mkdir -p /etc/systemd/system/pgwake.service.d &&
      printf "[Service]\nReadWritePaths=/srv/app/data\n" >/etc/systemd/system/pgwake.service.d/app.conf &&
      systemctl daemon-reload && systemctl restart pgwake' || fail "drop-in and restart"
id2=$(sql "SELECT pgwake.enqueue('writer')") || fail "enqueue"
wait_c "su pgwake -s /bin/sh -c \"psql -qAt -d pgwake -c \\\"SELECT status FROM pgwake.tasks WHERE id = $id2\\\"\" | grep -Eqx 'done|dead'" 30 \
    || fail "task $id2 (with the drop-in) did not end"
[ "$(sql "SELECT status FROM pgwake.tasks WHERE id = $id2")" = "done" ] \
    || fail "with ReadWritePaths=/srv/app/data: $(sql "SELECT last_error FROM pgwake.tasks WHERE id = $id2")"
in_c "[ \"\$(cat /srv/app/data/task-$id2)\" = $id2 ]" || fail "/srv/app/data/task-$id2 not written"
ok "with a ReadWritePaths=/srv/app/data drop-in the worker writes its directory; task done"

# ---- reload: SIGHUP, same process, the log line
pid=$(in_c 'systemctl show -P MainPID pgwake')
in_c 'sed -i "s/^max_workers = 2$/max_workers = 3/" /etc/pgwake/pgwake.conf && systemctl reload pgwake' \
    || fail "systemctl reload"
wait_c "journalctl --no-pager -u pgwake -o cat | grep -q 'configuration reloaded from /etc/pgwake/pgwake.conf'" 20 \
    || fail "no 'configuration reloaded' line after systemctl reload"
[ "$(in_c 'systemctl show -P MainPID pgwake')" = "$pid" ] || fail "reload changed the main pid"
ok "systemctl reload: SIGHUP, 'configuration reloaded', same pid $pid"

# ---- the stage key `user`: the daemon as root (a drop-in), workers dropped to
# their user; NoNewPrivileges does not stand in the way of a root daemon.
in_c 'su postgres -c "createuser root && psql -qc \"GRANT pgwake TO root\"" &&
      printf "[Service]\nUser=root\nGroup=root\n" >/etc/systemd/system/pgwake.service.d/root.conf &&
      printf "\n[stage:asuser]\ncommand = /bin/sh /srv/app/writer.sh\ndirectory = /srv/app\nuser = pgwake\n" >>/etc/pgwake/pgwake.conf &&
      systemctl daemon-reload && systemctl restart pgwake' || fail "root drop-in and restart"
id4=$(sql "SELECT pgwake.enqueue('asuser')") || fail "enqueue"
wait_c "su pgwake -s /bin/sh -c \"psql -qAt -d pgwake -c \\\"SELECT status FROM pgwake.tasks WHERE id = $id4\\\"\" | grep -Eqx 'done|dead'" 30 \
    || fail "task $id4 (stage asuser) did not end"
# As root, systemd gives the StateDirectory to root (0750): the worker, now
# user pgwake, may write its ReadWritePaths= directory and /tmp, not there.
err=$(sql "SELECT status || ': ' || coalesce(last_error, '') FROM pgwake.tasks WHERE id = $id4")
case "$err" in
"dead: /var/lib/pgwake/writer/task-$id4: "*"Permission denied; ") ;;
*) fail "stage asuser under a root daemon: expected only /var/lib/pgwake refused, got: $err" ;;
esac
in_c "grep -q 'running as pgwake' /var/log/pgwake/asuser.log &&
      grep -q 'wrote ./data/task-$id4' /var/log/pgwake/asuser.log &&
      grep -q 'wrote /tmp/writer/task-$id4' /var/log/pgwake/asuser.log &&
      [ \"\$(ps -o user= -p \$(systemctl show -P MainPID pgwake))\" = root ]" \
    || fail "stage asuser's worker did not run as pgwake under a root daemon, writing its directory and /tmp"
in_c 'rm /etc/systemd/system/pgwake.service.d/root.conf && systemctl daemon-reload && systemctl restart pgwake' \
    || fail "back to User=pgwake"
in_c '[ "$(ps -o user= -p $(systemctl show -P MainPID pgwake))" = pgwake ]' || fail "not back to User=pgwake"
ok "with User=root and Group=root in a drop-in the stage key user works (the worker ran as pgwake, wrote its directory and /tmp; /var/lib/pgwake is root's then)"
pid=$(in_c 'systemctl show -P MainPID pgwake')

# ---- watchdog: a SIGSTOPped daemon is killed and restarted (WatchdogSec=30s);
# its busy worker does not outlive it, and its lease is given back
idw=$(sql "SELECT pgwake.enqueue('writer', '{\\\"sleep\\\": 600}')") || fail "enqueue"
wait_c "su pgwake -s /bin/sh -c \"psql -qAt -d pgwake -c \\\"SELECT status FROM pgwake.tasks WHERE id = $idw\\\"\" | grep -qx leased" 30 \
    || fail "task $idw not leased"
wpid=$(sql "SELECT w.pid FROM pgwake.tasks t JOIN pgwake.workers w ON w.id = t.lease_owner WHERE t.id = $idw")
[ -n "$wpid" ] || fail "no worker pid for task $idw"
wd=$(in_c 'systemctl show -P WatchdogUSec pgwake')
nr0=$(in_c 'systemctl show -P NRestarts pgwake')
t0=$(now)
in_c "kill -STOP $pid"
wait_c "p=\$(systemctl show -P MainPID pgwake); [ \"\$p\" != $pid ] && [ \"\$p\" != 0 ] && [ \"\$(systemctl is-active pgwake)\" = active ]" 300 \
    || fail "the watchdog ($wd) did not restart the stopped daemon within 300 s"
tw=$(( $(now) - t0 ))
journal_has 'Watchdog timeout' || fail "restarted, but the journal names no watchdog timeout"
nr1=$(in_c 'systemctl show -P NRestarts pgwake')
[ "$nr1" -gt "$nr0" ] || fail "NRestarts did not grow ($nr0 -> $nr1)"
in_c "kill -0 $wpid" 2>/dev/null && fail "the stopped daemon's worker $wpid outlived it"
wait_c "su pgwake -s /bin/sh -c \"psql -qAt -d pgwake -c \\\"SELECT releases >= 1 FROM pgwake.tasks WHERE id = $idw\\\"\" | grep -qx t" 30 \
    || fail "task $idw's lease was not given back after the watchdog restart"
ok "watchdog (WatchdogUSec=$wd): SIGSTOPped daemon restarted after $tw s (NRestarts $nr0 -> $nr1); its worker gone, task $idw's lease given back"

# ---- stop with a busy worker (it ignores S: drain mode): within TimeoutStopSec,
# exit 0, no worker left, no lease held, the interrupted task given back with
# its attempt refunded. The busy worker is the one that took task $idw again.
wait_c "su pgwake -s /bin/sh -c \"psql -qAt -d pgwake -c \\\"SELECT status FROM pgwake.tasks WHERE id = $idw\\\"\" | grep -qx leased" 30 \
    || fail "task $idw not leased again after the watchdog restart"
att=$(sql "SELECT attempts FROM pgwake.tasks WHERE id = $idw")
tstop=$(in_c 'systemctl show -P TimeoutStopUSec pgwake')
t0=$(now)
in_c 'systemctl stop pgwake' || fail "systemctl stop"
ts=$(( $(now) - t0 ))
[ "$ts" -lt 60 ] || fail "stop took $ts s, TimeoutStopSec is $tstop"
res=$(in_c 'systemctl show -P Result pgwake')
[ "$res" = success ] || fail "stop result '$res' (a timeout or a kill?)"
in_c 'pgrep -u pgwake' >/dev/null && fail "processes of user pgwake left after stop: $(in_c 'pgrep -a -u pgwake')"
st=$(sql "SELECT status || ' ' || attempts || ' ' || coalesce(lease_owner, '-') FROM pgwake.tasks WHERE id = $idw")
[ "$st" = "pending $((att - 1)) -" ] || fail "the interrupted task is '$st', not 'pending $((att - 1)) -' (given back, refunded)"
[ "$(sql "SELECT count(*) FROM pgwake.tasks WHERE status = 'leased'")" = 0 ] || fail "a lease still held"
journal_has 'pgwake exiting \(0\)' || fail "no 'pgwake exiting (0)' in the journal"
ok "systemctl stop with a busy worker: $ts s (TimeoutStopSec=$tstop), Result=success, no worker, no lease, task refunded"
echo "PASS: pgwake under systemd"
