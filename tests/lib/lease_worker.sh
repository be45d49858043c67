#!/bin/sh
# lease_worker.sh MODE: a worker of an existing pipeline, for the release_sql
# tests. It leases one row of its stage in pm.cand (its own lease column,
# worker_id = PGWAKE_WORKER_ID). A first lease of a row misbehaves as MODE says
# (exit: exit 0 holding it; sleep: hold it forever, to be killed or declared
# hung); a row released before (releases > 0) is completed. Never heartbeats.
set -u
q() { psql -X -qAt -v ON_ERROR_STOP=1 -d "$PGWAKE_DSN" -c "$1"; }
row=$(q "UPDATE pm.cand SET status = 'leased', worker_id = '$PGWAKE_WORKER_ID'
          WHERE id = (SELECT id FROM pm.cand WHERE stage = '$PGWAKE_STAGE' AND status = 'pending'
                       ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
      RETURNING id, releases") || exit 1
[ -n "$row" ] || exit 0
id=${row%|*}
releases=${row#*|}
echo "leased row $id (released $releases times before)"
if [ "$releases" = 0 ]; then
    case $1 in
        exit) exit 0 ;;
        *) exec sleep 300 ;;
    esac
fi
q "UPDATE pm.cand SET status = 'done', done_by = '$PGWAKE_WORKER_ID'
    WHERE id = $id AND worker_id = '$PGWAKE_WORKER_ID'" >/dev/null || exit 1
echo "completed row $id"
