#!/bin/sh
# tests/pkg/install.sh DEBDIR: installs the packages from DEBDIR (make deb) in a
# booted fresh bookworm container, then upgrades over them (the same packages
# with a higher version), removes and purges, checking after each step what
# Debian practice asks. `make test-pkg`. Exit 0 pass, 1 fail, 77 cannot run here.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DEBS=$(cd "${1:-$ROOT/build}" && pwd)
. "$ROOT/tests/pkg/lib.sh"
pkg_can_run
ls "$DEBS"/pgwake_*.deb >/dev/null 2>&1 || pkg_die "no pgwake_*.deb in $DEBS (run make deb)"

W=$(mktemp -d /tmp/pgwake-pkg.XXXXXX)
cleanup() {
    pkg_poweroff
    pkg_unmount "$W"
    if [ "${KEEP_TEST_DIR:-0}" = 1 ]; then echo "kept $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ok() { echo "ok - $*"; }
in_c() { pkg_exec sh -c "$1"; }
check() { in_c "$1" >/dev/null 2>&1 || pkg_die "$2"; ok "$2"; }

# The upgrade: the same files, a higher version (maintainer scripts run as in
# a real upgrade: old prerm upgrade, new postinst configure OLD).
mkdir -p "$W/debs/v1" "$W/debs/v2"
for d in "$DEBS"/*.deb; do
    case "$d" in *-dbgsym_*) continue ;; esac
    cp "$d" "$W/debs/v1/"
    x="$W/repack"; rm -rf "$x"
    dpkg-deb -R "$d" "$x"
    sed -i 's/^Version: \(.*\)$/Version: \1+upgrade1/' "$x/DEBIAN/control"
    dpkg-deb -b -Zxz "$x" "$W/debs/v2/" >/dev/null
done
V1=$(dpkg-deb -f "$W/debs/v1/"pgwake_*.deb Version)
V2=$(dpkg-deb -f "$W/debs/v2/"pgwake_*.deb Version)

lower=$(pkg_rootfs "$PKG_BOOT_PACKAGES") || exit 1
root=$(pkg_overlay "$lower" "$W") || exit $?
mkdir -p "$root/debs"
cp -r "$W/debs/v1" "$W/debs/v2" "$root/debs/"
pkg_boot "$root" "$W"
ok "booted a fresh bookworm container"

# ---- install
in_c 'dpkg -i /debs/v1/*.deb' >"$W/install.log" 2>&1 \
    || { cat "$W/install.log"; pkg_die "dpkg -i of $V1 failed"; }
ok "installed $(cd "$W/debs/v1" && ls ./*.deb | tr '\n' ' ')"
check 'getent passwd pgwake | grep -q ":/var/lib/pgwake:/usr/sbin/nologin$"' \
    "a pgwake system user with home /var/lib/pgwake and no login"
check '[ "$(stat -c %U:%G:%a /etc/pgwake/pgwake.conf)" = root:pgwake:640 ]' \
    "/etc/pgwake/pgwake.conf is 640 root:pgwake"
check 'grep -q "^/etc/pgwake/pgwake.conf$" /var/lib/dpkg/info/pgwake.conffiles' \
    "/etc/pgwake/pgwake.conf is a conffile"
check '! grep -q "^dsn" /etc/pgwake/pgwake.conf && grep -q "^log_dir = /var/log/pgwake " /etc/pgwake/pgwake.conf' \
    "dsn is commented out; log_dir is /var/log/pgwake"
check '[ "$(systemctl is-enabled pgwake)" = disabled ] && ! systemctl is-active -q pgwake' \
    "the service is installed disabled and not started (no dsn yet)"
check 'systemctl cat pgwake | grep -q "^ExecStart=/usr/bin/pgwake run"' \
    "the unit starts /usr/bin/pgwake"
check 'pgwake version' "pgwake version runs"
check 'ls /usr/share/pgwake/sql/0001_schema.sql && zcat /usr/share/man/man1/pgwake.1.gz | grep -q pgwake' \
    "migrations and man page installed"
check '[ -f "$(pkg-config --variable=libdir pgwake-worker)/libpgwake-worker.a" ] && [ -f "$(pkg-config --variable=includedir pgwake-worker)/pgwake/worker.h" ]' \
    "libpgwake-worker-dev: the library and header where its pkg-config file says"
check 'pkg-config --libs pgwake-worker | grep -q -- "-lpgwake-worker"' \
    "pkg-config --libs pgwake-worker resolves (libpq from libpq-dev)"
check 'cd / && python3 -c "import pgwake; pgwake.run" && ls /usr/lib/python3/dist-packages/pgwake/__pycache__/runner.*.pyc' \
    "python3-pgwake: import pgwake, byte-compiled"

# ---- configure it and run it, as README.Debian says
in_c 'su postgres -c "createuser pgwake && createdb -O pgwake pgwake" &&
      sed -i "s|^; dsn = .*|dsn = postgresql:///pgwake|" /etc/pgwake/pgwake.conf &&
      su pgwake -s /bin/sh -c "pgwake migrate -c /etc/pgwake/pgwake.conf" &&
      systemctl enable --now pgwake' >"$W/configure.log" 2>&1 \
    || { cat "$W/configure.log"; pkg_die "configuring and starting the service failed"; }
check 'systemctl is-active -q pgwake' "configured (dsn, migrate), enable --now: active"
pid1=$(in_c 'systemctl show -P MainPID pgwake')

# ---- upgrade over itself, with the database down: apt must not wait for the
# restarted daemon's READY (it comes when the database does)
in_c 'systemctl stop postgresql@15-main' || pkg_die "stopping PostgreSQL"
t0=$(date +%s)
in_c 'timeout 300 dpkg -i /debs/v2/*.deb' >"$W/upgrade.log" 2>&1 \
    || { cat "$W/upgrade.log"; pkg_die "upgrade to $V2 failed (or hung 300 s)"; }
tu=$(( $(date +%s) - t0 ))
[ "$tu" -lt 60 ] || pkg_die "the upgrade took $tu s with the database down"
check "[ \"\$(dpkg-query -W -f '\${Version}' pgwake)\" = '$V2' ]" "upgraded $V1 -> $V2 in $tu s with PostgreSQL down"
check 'grep -q "^dsn = postgresql:///pgwake" /etc/pgwake/pgwake.conf' \
    "the edited conffile is kept across the upgrade"
check '[ "$(stat -c %U:%G:%a /etc/pgwake/pgwake.conf)" = root:pgwake:640 ]' \
    "its owner and mode too"
pkg_wait() {  # pkg_wait CMD SECONDS
    _n=$(($2 * 5))
    while [ "$_n" -gt 0 ]; do in_c "$1" >/dev/null 2>&1 && return 0; sleep 0.2; _n=$((_n - 1)); done
    return 1
}
pkg_wait "p=\$(systemctl show -P MainPID pgwake); [ \"\$p\" != $pid1 ] && [ \"\$p\" != 0 ]" 60 \
    || pkg_die "the daemon was not restarted by the upgrade (MainPID still $pid1)"
check '[ "$(systemctl is-active pgwake)" = activating ]' \
    "the new daemon is waiting for the database (activating)"
in_c 'systemctl start postgresql@15-main' || pkg_die "starting PostgreSQL"
pkg_wait '[ "$(systemctl is-active pgwake)" = active ]' 60 || pkg_die "not active 60 s after PostgreSQL came back"
pid2=$(in_c 'systemctl show -P MainPID pgwake')
ok "the running daemon was restarted by the upgrade (MainPID $pid1 -> $pid2), active once PostgreSQL is back"
check '[ "$(systemctl is-enabled pgwake)" = enabled ]' "still enabled after the upgrade"

# ---- remove
in_c 'dpkg -r python3-pgwake libpgwake-worker-dev pgwake' >"$W/remove.log" 2>&1 \
    || { cat "$W/remove.log"; pkg_die "dpkg -r failed"; }
check '! systemctl is-active -q pgwake && ! pgrep -u pgwake' \
    "remove stops the daemon; no pgwake process left"
check '[ ! -e /usr/bin/pgwake ] && [ -f /etc/pgwake/pgwake.conf ]' \
    "remove leaves the conffile, removes the binary"
check 'getent passwd pgwake' "the pgwake user stays"
check '[ ! -e /usr/lib/python3/dist-packages/pgwake ]' "python3-pgwake removed with its byte-compiled files"

# ---- purge
in_c 'dpkg -P pgwake' >"$W/purge.log" 2>&1 || { cat "$W/purge.log"; pkg_die "dpkg -P failed"; }
check '[ ! -e /etc/pgwake ] && [ ! -e /var/lib/pgwake ] && [ ! -e /var/log/pgwake ]' \
    "purge removes /etc/pgwake, /var/lib/pgwake, /var/log/pgwake"
check '! dpkg-statoverride --list /etc/pgwake/pgwake.conf && ! ls /etc/systemd/system/multi-user.target.wants/pgwake.service' \
    "purge drops the stat override and the enablement link"
check '! dpkg -l pgwake 2>/dev/null | grep -q "^[ir]"' "nothing of pgwake left in dpkg's database"
echo "PASS: install, upgrade, remove, purge"
