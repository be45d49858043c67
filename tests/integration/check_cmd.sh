#!/bin/sh
# check_cmd: `pgwake check` reports each finding on its own line and picks its
# exit code: 0 when nothing is wrong, 1 for a problem of the environment
# (missing command, schema too old), 2 for a bad configuration.
. "$ROOT/tests/lib/itest.sh"

write_conf good.conf <<EOF2
[pgwake]
host = check-1
log_dir = $T/logs

[stage:alpha]
command = $TESTWORKER --drain
EOF2
"$PGWAKE" check -c "$T/good.conf" -d "$TEST_DSN" >"$T/out" 2>&1
rc=$?
cat "$T/out"
[ "$rc" = 0 ] || fail "good config: exit $rc"
grep -q '^ok  *stage alpha: ' "$T/out" || fail "stage not checked"
grep -q '^ok  *schema pgwake at version' "$T/out" || fail "schema not checked"

write_conf missing.conf <<EOF2
[pgwake]
host = check-1
log_dir = $T/logs

[stage:alpha]
command = $T/nope --x

[stage:beta]
command = $T/plain-file
EOF2
echo "#!/bin/sh" >"$T/plain-file"
chmod 644 "$T/plain-file"
"$PGWAKE" check -c "$T/missing.conf" -d "$TEST_DSN" >"$T/out" 2>&1
rc=$?
cat "$T/out"
[ "$rc" = 1 ] || fail "missing command: exit $rc"
grep -q "^problem  *stage alpha: command: .*$T/nope.*No such file or directory" "$T/out" || fail "missing command not named"
grep -q "^problem  *stage beta: .*plain-file is not executable\|^problem  *stage beta: command: .*Permission denied" "$T/out" \
    || fail "non-executable command not reported"

q "DELETE FROM pgwake.schema_migrations"
"$PGWAKE" check -c "$T/good.conf" -d "$TEST_DSN" >"$T/out" 2>&1
rc=$?
[ "$rc" = 1 ] || fail "old schema: exit $rc"
grep -q 'run pgwake migrate' "$T/out" || fail "old schema not explained"

printf '[pgwake]\nhost = check-1\nhttp_listen = 127.0.0.1:1\nmax_workers = 3\n' | write_conf bad.conf
"$PGWAKE" check -c "$T/bad.conf" -d "$TEST_DSN" >"$T/out" 2>&1
rc=$?
[ "$rc" = 2 ] || fail "bad config: exit $rc"
grep -q "bad.conf:4: \[pgwake\] max_workers" "$T/out" || fail "bad config line not named: $(cat "$T/out")"
echo ok
