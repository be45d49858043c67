#!/bin/sh
# sql_claim_race: 8 connections claim and complete 5,000 tasks at once, each
# claim and each complete its own transaction. Every task must be completed
# exactly once: complete returns true 5,000 times, never for the same task twice,
# never false, and every task is done after a single attempt.
. "$ROOT/tests/lib/sqlhelp.sh"

N=5000
C=8
q "INSERT INTO pgwake.tasks (stage, payload)
   SELECT 'race', jsonb_build_object('i', i) FROM generate_series(1, $N) i" >/dev/null || fail "insert"

# Each connection repeats: claim a batch (1 to 4 tasks, by connection), then
# complete each claimed task in its own statement (\gexec), printing
# "<complete's result>|<task id>". It has three times its fair share of claims.
i=1
while [ $i -le $C ]; do
    w=$(q "SELECT pgwake.register_worker('race', 'host$i')") || fail "register_worker"
    n=$(( (i - 1) % 4 + 1 ))
    iters=$(( N / C / n * 3 ))
    {
        echo '\set ON_ERROR_STOP 1'
        k=0
        while [ $k -lt $iters ]; do
            echo "SELECT format('SELECT pgwake.complete(%s, %s), %s', id, lease_token, id)
                    FROM pgwake.claim('race', '$w', n => $n) \\gexec"
            k=$((k + 1))
        done
    } >"$S/conn$i.sql"
    i=$((i + 1))
done

start=$(now_ms)
pids=""
i=1
while [ $i -le $C ]; do
    spawn psql -X -qAt -d "$TEST_DSN" -f "$S/conn$i.sql" >"$S/conn$i.out" 2>"$S/conn$i.err"
    pids="$pids $LAST_PID"
    i=$((i + 1))
done
for p in $pids; do
    wait_pid "$p" 200 || fail "a claiming connection still running after 200 s"
    [ "$RC" = 0 ] || fail "a claiming connection failed (exit $RC): $(cat "$S"/conn*.err)"
done
note "8 connections done in $(( $(now_ms) - start )) ms"
cat "$S"/conn*.err | grep . && fail "errors from the claiming connections"
per=""
i=1
while [ $i -le $C ]; do
    c=$(grep -c '^t|' "$S/conn$i.out")
    [ "$c" -gt 0 ] || fail "connection $i completed nothing: the race was not a race"
    per="$per $c"
    i=$((i + 1))
done
note "completed per connection:$per"

# Whatever short batches left behind (SKIP LOCKED may hand a claim fewer rows
# than exist), one more connection drains; it must normally find nothing.
left=$(q "SELECT count(*) FROM pgwake.tasks WHERE status = 'pending'")
note "left pending after the race: $left"
w=$(q "SELECT pgwake.register_worker('race', 'drain')")
q "SELECT pgwake.complete(id, lease_token) || '|' || id FROM pgwake.claim('race', '$w', n => $N)" \
    >"$S/drain.out" || fail "drain"

cat "$S"/conn*.out "$S/drain.out" | grep . >"$S/all.out"
ok=$(grep -c '^t|' "$S/all.out")
bad=$(grep -vc '^t|' "$S/all.out")
uniq=$(cut -d'|' -f2 "$S/all.out" | sort -u | wc -l)
note "complete returned true $ok times, something else $bad times, for $uniq distinct tasks"
[ "$ok" = "$N" ] || fail "complete returned true $ok times, not $N"
[ "$bad" = 0 ] || fail "complete returned false $bad times: $(grep -v '^t|' "$S/all.out" | head -5)"
[ "$uniq" = "$N" ] || fail "$uniq distinct tasks completed, not $N (one completed twice)"

got=$(q "SELECT count(*) FILTER (WHERE status = 'done') || ' done, '
             || count(*) FILTER (WHERE attempts <> 1) || ' not claimed once, '
             || sum(releases) || ' releases, ' || count(DISTINCT lease_token) || ' tokens'
           FROM pgwake.tasks WHERE stage = 'race'")
[ "$got" = "$N done, 0 not claimed once, 0 releases, $N tokens" ] || fail "database says: $got"
note "$got"
echo "ok"
