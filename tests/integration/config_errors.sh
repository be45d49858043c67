#!/bin/sh
# config_errors: the real binary refuses each bad configuration of
# tests/unit/data/config (long lines, duplicates, unknown keys, bad values,
# broken cross-key rules, ...) with exit 2 and one line naming the file, and
# the line and key where there is one; a missing file names where it looked.
. "$ROOT/tests/lib/itest.sh"

n=0
for conf in "$ROOT"/tests/unit/data/config/bad_*.conf; do
    base=${conf%.conf}
    name=$(basename "$base")
    cp "$conf" "$T/$name.conf"
    # git does not keep modes: the permission case gets its own below.
    if [ "$name" = bad_world_readable ]; then chmod 644 "$T/$name.conf"; else chmod 600 "$T/$name.conf"; fi
    expected="pgwake: $(sed -e "s|FILE|$T/$name.conf|g" -e "s|DIR|$T|g" "$base.err")"
    PGWAKE_CONF= "$PGWAKE" run -c "$T/$name.conf" -d "$TEST_DSN" >"$T/out" 2>&1
    rc=$?
    [ "$rc" = 2 ] || fail "$name: exit $rc, expected 2: $(cat "$T/out")"
    got=$(cat "$T/out")
    [ "$got" = "$expected" ] || fail "$name: got \"$got\", expected \"$expected\""
    n=$((n + 1))
done
note "$n bad configurations refused with exit 2"
[ "$n" -ge 12 ] || fail "only $n bad configurations"

PGWAKE_CONF="$T/nowhere.conf" "$PGWAKE" run >"$T/out" 2>&1
rc=$?
[ "$rc" = 2 ] || fail "missing file: exit $rc"
grep -q "$T/nowhere.conf" "$T/out" || fail "missing file not named: $(cat "$T/out")"
echo ok
