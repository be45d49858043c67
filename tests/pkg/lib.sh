# tests/pkg/lib.sh: fresh Debian 12 (bookworm) root file systems for the package,
# systemd and fresh-machine checks, run with systemd-nspawn. Sourced (POSIX sh).
#
# A rootfs is built once by mmdebstrap and cached read-only under
# $PGWAKE_ROOTFS_CACHE (default /var/cache/pgwake-test), keyed by a hash of its
# package list; each run gets a writable overlay of it, thrown away afterwards.

PKG_CACHE=${PGWAKE_ROOTFS_CACHE:-/var/cache/pgwake-test}
# The booted containers' packages: systemd, PostgreSQL, and everything the
# pgwake packages depend on (dpkg -i needs no network there), curl for
# /healthz.
# shellcheck disable=SC2034 # used by the scripts that source this file
PKG_BOOT_PACKAGES=systemd,systemd-sysv,dbus,adduser,postgresql-15,libpq5,libevent-2.1-7,\
libevent-pthreads-2.1-7,libcurl4,libinih1,libjansson4,python3,python3-psycopg,procps,curl,\
libpq-dev,pkg-config

pkg_log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
pkg_die() { pkg_log "FAIL: $*"; exit 1; }

# pkg_can_run: exit 77 (skipped) with the reason when this machine cannot run
# the containers (not root, no nspawn/mmdebstrap, no overlay mounts, as in an
# unprivileged CI container). Booting is tried later (pkg_boot).
pkg_can_run() {
    [ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (systemd-nspawn, mounts)"; exit 77; }
    for t in mmdebstrap systemd-nspawn nsenter; do
        command -v "$t" >/dev/null 2>&1 \
            || { echo "SKIP: $t missing (apt-get install mmdebstrap systemd-container)"; exit 77; }
    done
    _p=$(mktemp -d /tmp/pgwake-probe.XXXXXX)
    mkdir "$_p/l" "$_p/u" "$_p/w" "$_p/m"
    if mount -t overlay overlay -o "lowerdir=$_p/l,upperdir=$_p/u,workdir=$_p/w" "$_p/m" 2>/dev/null; then
        umount "$_p/m"; rm -rf "$_p"
    else
        rm -rf "$_p"; echo "SKIP: cannot mount an overlay file system here (no CAP_SYS_ADMIN?)"; exit 77
    fi
}

# pkg_rootfs "PKG1,PKG2,...": prints the path of a cached bookworm minbase
# rootfs with those packages, building it when missing. In $(...), so callers
# check its status: lower=$(pkg_rootfs ...) || exit 1.
pkg_rootfs() {
    key=$(printf 'bookworm minbase %s\n' "$1" | sha256sum | cut -c1-16)
    dir=$PKG_CACHE/rootfs-$key
    if [ ! -d "$dir" ]; then
        mkdir -p "$PKG_CACHE"
        pkg_log "building a bookworm rootfs with $1 (cached as $dir)"
        rm -rf "$dir.tmp"
        mmdebstrap --quiet --variant=minbase --include="$1" bookworm "$dir.tmp" >&2 \
            || { rm -rf "$dir.tmp"; pkg_die "mmdebstrap failed (is a Debian mirror reachable?)"; }
        mv "$dir.tmp" "$dir"
    fi
    echo "$dir"
}

# pkg_overlay LOWER WORKDIR: mounts a writable overlay of LOWER at WORKDIR/root
# (the changes go to WORKDIR/upper) and prints WORKDIR/root; status 77 if it
# cannot (root=$(pkg_overlay ...) || exit $?).
pkg_overlay() {
    mkdir -p "$2/upper" "$2/work" "$2/root"
    mount -t overlay overlay -o "lowerdir=$1,upperdir=$2/upper,workdir=$2/work" "$2/root" \
        || { echo "SKIP: cannot mount an overlay file system here"; exit 77; }
    echo "$2/root"
}

pkg_unmount() {
    mountpoint -q "$1/root" 2>/dev/null && umount -l "$1/root"
    return 0
}

# pkg_nspawn ROOT CMD...: runs one command in the container (no init), with the
# host's network (apt can reach the mirrors) and its resolv.conf.
pkg_nspawn() {
    r=$1; shift
    systemd-nspawn -q -D "$r" --register=no --keep-unit --resolv-conf=copy-host \
        --setenv=DEBIAN_FRONTEND=noninteractive "$@"
}

# pkg_boot ROOT WORKDIR: boots systemd in ROOT (nspawn -b, in the background,
# console to WORKDIR/console.log) and waits until it is up. Its network is its
# own loopback only (its PostgreSQL and http_listen do not meet the host's). sets PKG_NSPAWN_PID
# and PKG_INIT (the container's systemd, as seen from here). Exits 77 when
# this machine cannot boot a container.
pkg_boot() {
    systemd-nspawn -q -D "$1" -b --register=no --keep-unit --private-network \
        --machine="pgwake-test-$$" >"$2/console.log" 2>&1 </dev/null &
    PKG_NSPAWN_PID=$!
    PKG_INIT=""
    i=0
    while [ $i -lt 300 ]; do
        kill -0 "$PKG_NSPAWN_PID" 2>/dev/null || {
            tail -20 "$2/console.log" >&2
            echo "SKIP: systemd-nspawn -b could not boot a container here (console above)"
            exit 77
        }
        if [ -z "$PKG_INIT" ]; then
            PKG_INIT=$(pgrep -P "$PKG_NSPAWN_PID" -x systemd | head -n 1) || PKG_INIT=""
        fi
        if [ -n "$PKG_INIT" ]; then
            st=$(pkg_exec systemctl is-system-running 2>/dev/null) || true
            case "$st" in running|degraded) return 0 ;; esac
        fi
        sleep 0.2
        i=$((i + 1))
    done
    tail -20 "$2/console.log" >&2
    echo "SKIP: the container's systemd did not come up within 60 s"
    exit 77
}

# pkg_exec CMD...: runs CMD inside the booted container (all its namespaces).
pkg_exec() {
    nsenter -t "$PKG_INIT" -a env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
        DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 "$@"
}

# pkg_poweroff: stops the booted container and waits for nspawn to end.
pkg_poweroff() {
    [ -n "${PKG_NSPAWN_PID:-}" ] || return 0
    if kill -0 "$PKG_NSPAWN_PID" 2>/dev/null; then
        [ -n "${PKG_INIT:-}" ] && pkg_exec systemctl poweroff --no-block >/dev/null 2>&1
        i=0
        while kill -0 "$PKG_NSPAWN_PID" 2>/dev/null && [ $i -lt 150 ]; do
            sleep 0.2; i=$((i + 1))
        done
        kill -9 "$PKG_NSPAWN_PID" 2>/dev/null
    fi
    wait "$PKG_NSPAWN_PID" 2>/dev/null
    PKG_NSPAWN_PID=""
    return 0
}
