#!/bin/sh
# writer_worker.sh: tests/pkg/systemd.sh's worker, run by the packaged pgwake
# under systemd. It writes where real workers write -- its own directory
# (./data), the service's state folder (/var/lib/pgwake) and /tmp -- and says
# so on stdout (the stage log); then sleeps the task's "sleep" seconds and
# completes it, or fails it (no retry) naming every path it could not write.
# It says first which user it runs as. Drain mode: claims until nothing is
# left, then exits 0.
set -u
TAB=$(printf '\t')
q() { psql -X -q -A -t -v ON_ERROR_STOP=1 -F "$TAB" -d "$PGWAKE_DSN" "$@"; }
echo "worker $PGWAKE_WORKER_ID running as $(id -un)"

while :; do
    row=$(q -v stage="$PGWAKE_STAGE" -v wid="$PGWAKE_WORKER_ID" <<'SQL'
SELECT c.id, c.lease_token, COALESCE(c.payload ->> 'sleep', '0')
  FROM pgwake.claim(:'stage', :'wid', '5 minutes'::interval, 1) AS c;
SQL
) || exit 1
    [ -n "$row" ] || exit 0
    id=$(printf '%s\n' "$row" | cut -f1)
    token=$(printf '%s\n' "$row" | cut -f2)
    secs=$(printf '%s\n' "$row" | cut -f3)
    err=""
    for p in "./data/task-$id" "/var/lib/pgwake/writer/task-$id" "/tmp/writer/task-$id"; do
        if out=$({ mkdir -p "${p%/*}" && echo "$id" >"$p" && [ "$(cat "$p")" = "$id" ]; } 2>&1); then
            echo "wrote $p"
        else
            echo "cannot write $p: $out"
            err="$err$p: $out; "
        fi
    done
    sleep "$secs"
    if [ -z "$err" ]; then
        q -v id="$id" -v token="$token" >/dev/null <<'SQL'
SELECT pgwake.complete(:'id'::bigint, :'token'::bigint);
SQL
    else
        q -v id="$id" -v token="$token" -v err="$err" >/dev/null <<'SQL'
SELECT pgwake.fail(:'id'::bigint, :'token'::bigint, :'err', false);
SQL
    fi
done
