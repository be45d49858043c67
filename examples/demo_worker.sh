#!/bin/sh
# demo_worker.sh - the demo pipeline's worker (see demo_worker.c) in plain shell
# with psql, to show that the worker protocol is only SQL (docs/worker-protocol.md).
#
# Drain mode: it claims one task at a time until none is left, then exits 0; it
# ignores PGWAKE_WAKE_FD (pgwake copes with workers that do). Started by pgwake,
# it takes PGWAKE_STAGE, PGWAKE_WORKER_ID, PGWAKE_DSN, PGWAKE_LEASE_SECONDS and
# PGWAKE_HEARTBEAT_INTERVAL from the environment; started by hand (no
# PGWAKE_WORKER_ID), it registers itself and ends its registration on exit:
#   PGWAKE_STAGE=company_discovery PGWAKE_DSN=postgresql:///mydb sh examples/demo_worker.sh
# Every value reaches SQL as a psql variable quoted with :'var', never pasted
# into the SQL text. Exit codes: 0 drained, 1 error, 3 declared dead (fenced).
set -eu

STAGE=${PGWAKE_STAGE:?"set PGWAKE_STAGE (pgwake sets it for its workers)"}
LEASE="${PGWAKE_LEASE_SECONDS:-300} seconds"
HB_INTERVAL=${PGWAKE_HEARTBEAT_INTERVAL:-30}
DSN=${PGWAKE_DSN:-}
TAB=$(printf '\t')

# q runs psql on the SQL from stdin: unaligned, tuples only, stop at the first error.
q() {
    if [ -n "$DSN" ]; then
        psql -X -q -A -t -v ON_ERROR_STOP=1 -F "$TAB" -d "$DSN" "$@"
    else
        psql -X -q -A -t -v ON_ERROR_STOP=1 -F "$TAB" "$@"
    fi
}

# ---- register (only when pgwake did not spawn us)
WID=${PGWAKE_WORKER_ID:-}
SELF=0
if [ -z "$WID" ]; then
    WID=$(q -v stage="$STAGE" -v host="$(hostname)" -v pid="$$" <<'SQL'
SELECT pgwake.register_worker(:'stage', :'host', :'pid'::int);
SQL
)
    SELF=1
fi

# ---- heartbeat for the whole life, in the background; -1 means we were
# declared dead: our leases are others' now, so stop the main loop at once.
MAIN=$$
(
    sp=
    trap 'kill $sp 2>/dev/null; exit 0' TERM
    while :; do
        sleep "$HB_INTERVAL" &
        sp=$!
        wait "$sp"
        r=$(q -v wid="$WID" <<'SQL' 2>/dev/null || echo error
SELECT pgwake.heartbeat(:'wid');
SQL
)
        if [ "$r" = "-1" ]; then
            echo "demo_worker.sh: worker $WID was declared dead (fenced)" >&2
            kill -USR1 "$MAIN"
            exit 0
        fi
    done
) &
HB_PID=$!

# shellcheck disable=SC2317 # called by the EXIT trap
finish() {
    kill "$HB_PID" 2>/dev/null || true
    if [ "$SELF" = 1 ]; then
        q -v wid="$WID" >/dev/null <<'SQL' || true
SELECT pgwake.worker_exited(:'wid');
SQL
    fi
}
trap finish EXIT
trap 'exit 3' USR1
# SIGTERM/SIGINT: finish the current task, then exit 0 (a graceful stop)
STOP=0
trap 'STOP=1' TERM INT

# work MS sleeps MS milliseconds: the demo's stand-in for real work.
work() {
    sleep "$(printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)))"
}

# followups_sql prints the statement that enqueues this stage's follow-ups (fixed
# text; the data comes in as :'payload' and :'run').
followups_sql() {
    case "$STAGE" in
    company_discovery) cat <<'SQL'
SELECT count(pgwake.enqueue('company_research',
           jsonb_build_object('company', i, 'of', p.n, 'work_ms', p.w),
           NULLIF(:'run', '0')::bigint))
  FROM (SELECT COALESCE((:'payload'::jsonb ->> 'count')::int, 5) AS n,
               COALESCE((:'payload'::jsonb ->> 'work_ms')::int, 150) AS w) p,
       generate_series(1, p.n) AS i;
SQL
    ;;
    company_research) cat <<'SQL'
SELECT count(pgwake.enqueue('contact_discovery',
           jsonb_build_object('company', (:'payload'::jsonb ->> 'company')::int, 'contact', c,
                              'work_ms', COALESCE((:'payload'::jsonb ->> 'work_ms')::int, 150)),
           NULLIF(:'run', '0')::bigint))
  FROM generate_series(1, 2) AS c;
SQL
    ;;
    *) echo "SELECT 0;" ;;
    esac
}

# complete_task ID TOKEN RUN PAYLOAD: complete + follow-ups in one transaction,
# committed only when complete returned true (else we were fenced: roll back).
complete_task() {
    out=$({
        cat <<'SQL'
BEGIN;
SELECT pgwake.complete(:'id'::bigint, :'token'::bigint) AS ok \gset
\if :ok
SQL
        followups_sql
        cat <<'SQL'
COMMIT;
\echo ok
\else
ROLLBACK;
\echo fenced
\endif
SQL
    } | q -v id="$1" -v token="$2" -v run="$3" -v payload="$4") || return 1
    printf '%s\n' "$out" | tail -n 1
}

# fail_task ID TOKEN ERROR RETRY
fail_task() {
    q -v id="$1" -v token="$2" -v err="$3" -v retry="$4" >/dev/null <<'SQL'
SELECT pgwake.fail(:'id'::bigint, :'token'::bigint, :'err', :'retry'::boolean);
SQL
}

# ---- the loop: claim one task, do it, complete it; stop when nothing is left
while [ "$STOP" = 0 ]; do
    row=$(q -v stage="$STAGE" -v wid="$WID" -v lease="$LEASE" <<'SQL'
SELECT c.id, c.lease_token, COALESCE(c.run_id, 0), c.attempts,
       COALESCE(c.payload ->> 'count', '5'), COALESCE(c.payload ->> 'company', '0'),
       COALESCE(c.payload ->> 'contact', '0'), COALESCE(c.payload ->> 'work_ms', '150'),
       c.payload::text
  FROM pgwake.claim(:'stage', :'wid', :'lease'::interval, 1) AS c;
SQL
)
    [ -n "$row" ] || break
    IFS=$TAB read -r id token run attempts count company contact work_ms payload <<EOF
$row
EOF
    [ "$attempts" -gt 1 ] && echo "task $id is a re-execution (attempt $attempts)"
    case "$STAGE" in
    company_discovery) work "$work_ms"; line="discovered $count companies for run $run" ;;
    company_research) work "$work_ms"; line="researched company $company of run $run" ;;
    contact_discovery) work "$work_ms"; line="found contact $contact of company $company of run $run" ;;
    *)
        fail_task "$id" "$token" "demo_worker.sh does not know stage $STAGE" false
        continue ;;
    esac
    if result=$(complete_task "$id" "$token" "$run" "$payload"); then
        if [ "$result" = ok ]; then
            echo "$line"
        else
            echo "task $id: lease lost (fenced); result discarded" >&2
        fi
    else
        fail_task "$id" "$token" "completing failed (see the worker log)" true || true
    fi
done
exit 0
