# tests/pkg/lib.sh: fresh Debian 12 (bookworm) root file systems for the package,
# systemd and fresh-machine checks, run with systemd-nspawn. Sourced (POSIX sh).
#
# A rootfs is built once by mmdebstrap and cached read-only under
# $PGWAKE_ROOTFS_CACHE (default /var/cache/pgwake-test), keyed by a hash of its
# package list; each run gets a writable overlay of it, thrown away afterwards.

PKG_CACHE=${PGWAKE_ROOTFS_CACHE:-/var/cache/pgwake-test}

pkg_log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
pkg_die() { pkg_log "FAIL: $*"; exit 1; }

# pkg_can_run: exit 77 (skipped) with the reason when this machine cannot run
# the containers (not root, no nspawn/mmdebstrap, no overlayfs).
pkg_can_run() {
    [ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (systemd-nspawn, mounts)"; exit 77; }
    for t in mmdebstrap systemd-nspawn nsenter; do
        command -v "$t" >/dev/null 2>&1 \
            || { echo "SKIP: $t missing (apt-get install mmdebstrap systemd-container)"; exit 77; }
    done
}

# pkg_rootfs "PKG1,PKG2,...": prints the path of a cached bookworm minbase
# rootfs with those packages, building it when missing.
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
# (the changes go to WORKDIR/upper) and prints WORKDIR/root.
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
