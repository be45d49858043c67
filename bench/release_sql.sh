#!/bin/sh
# bench/release_sql.sh: SIGKILL to released in the user's own table (SPEC
# section 7, release_sql): a pending_sql stage whose worker leases the one row
# of a table of its own (worker_id = PGWAKE_WORKER_ID) and holds it; the
# benchmark (bench/release_sql.py) SIGKILLs it, and times the kill to the
# commit of the release (a trigger of the benchmark's table notifies when the
# row's status leaves 'leased'). Aim: p99 < 50 ms, like a pgwake.tasks release
# (bench/health.sh `kill`). Markdown on stdout, progress on stderr.
#
#   sh bench/release_sql.sh [-n KILLS] [-r REPEATS]     defaults: -n 200 -r 2
set -eu
cd "$(dirname "$0")/.."
KILLS=200
REPEAT=2
while getopts n:r:h opt; do
    case $opt in
    n) KILLS=$OPTARG ;;
    r) REPEAT=$OPTARG ;;
    *) sed -n '2,/^set /s/^# \{0,1\}//p' "$0"; [ "$opt" = h ] && exit 0; exit 2 ;;
    esac
done
. bench/lib/daemon.sh
bench_setup release-sql
BENCH_HOST=bench-rsql

q "CREATE TABLE bench_lease (id int PRIMARY KEY, status text NOT NULL, worker_id text);
   INSERT INTO bench_lease VALUES (1, 'idle', NULL);
   CREATE FUNCTION bench_lease_notify() RETURNS trigger LANGUAGE plpgsql AS \$\$
   BEGIN
       PERFORM pg_notify(CASE WHEN NEW.status = 'leased' THEN 'bench_leased' ELSE 'bench_released' END,
                         COALESCE(NEW.worker_id, OLD.worker_id, ''));
       RETURN NULL;
   END \$\$;
   CREATE TRIGGER bench_lease_notify AFTER UPDATE OF status ON bench_lease FOR EACH ROW
       WHEN (OLD.status IS DISTINCT FROM NEW.status AND (NEW.status = 'leased' OR OLD.status = 'leased'))
       EXECUTE FUNCTION bench_lease_notify();" >/dev/null
cat >"$W/holder.sh" <<'EOF2'
#!/bin/sh
# Leases the row and holds it until killed.
psql -X -qAt -d "$PGWAKE_DSN" -c "UPDATE bench_lease SET status = 'leased', worker_id = '$PGWAKE_WORKER_ID'
    WHERE id = 1 AND status = 'pending'" >/dev/null || exit 1
exec sleep 600
EOF2
chmod 755 "$W/holder.sh"
bench_conf pgwake.conf <<EOF2
[pgwake]
host = $BENCH_HOST
log_dir = $W/logs
lock_file = $W/pgwake.lock
http_listen = 127.0.0.1:$HTTP_PORT
recount_interval = 0

[stage:holder]
command = $W/holder.sh
max_workers = 1
restart_delay = 100ms
restart_delay_max = 100ms
max_restarts = 0
pending_sql = SELECT count(*) FROM public.bench_lease WHERE status = 'pending'
release_sql = UPDATE public.bench_lease SET status = 'pending', worker_id = NULL
    WHERE worker_id = \$1 AND status = 'leased'
EOF2
bench_start pgwake.conf
: >"$W/results"
r=1
while [ $r -le "$REPEAT" ]; do
    bench_log "run $r of $REPEAT: $KILLS SIGKILLs (load $(bench_load))"
    /usr/bin/python3 bench/release_sql.py "$PGTMP_DSN" "$KILLS" >"$W/samples-$r" || { tail -n 20 "$W/daemon.log" >&2; exit 1; }
    grep '^RESULT' "$W/samples-$r" | tee -a "$W/results" >&2
    q "UPDATE bench_lease SET status = 'idle' WHERE id = 1" >/dev/null
    r=$((r + 1))
done
bench_stop
[ "$(q "SELECT count(*) FROM pgwake.release_failures")" = 0 ] || { echo "release failures recorded" >&2; exit 1; }

worst=$(sort -t= -k5 -n "$W/results" | awk '{ split($5, a, "="); if (a[2] + 0 >= m) { m = a[2] + 0; l = $0 } } END { print l }')
field() { echo "$worst" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
echo "## release_sql: SIGKILL to released in the user's own table"
echo
echo "| what | kills | p50 ms | p90 ms | p99 ms | max ms | aim |"
echo "|---|---|---|---|---|---|---|"
p99=$(field p99_ms)
met=$(awk -v p="$p99" 'BEGIN { print (p < 50) ? "met" : "MISSED" }')
echo "| **SIGKILL of a worker holding a row of its own table -> the row released** (release_sql run by the trigger of release_worker; commit seen by LISTEN) | $(field kills) | $(field p50_ms) | $(field p90_ms) | $p99 | $(field max_ms) | p99 < 50 ms: $met |"
echo
echo "A pending_sql stage (max_workers = 1, restart_delay = restart_delay_max = 100ms) whose worker (a shell script: psql, then \`exec sleep\`) leases the one row of \`bench_lease\` with its PGWAKE_WORKER_ID and holds it; \`bench/release_sql.py\` SIGKILLs it when the row is leased and waits for the NOTIFY of the benchmark's own trigger on the row (status leaving 'leased'), blocked in select(2). The row shown is the run with the highest p99 of $REPEAT runs ($(cut -d' ' -f5 "$W/results" | tr '\n' ' ')). $(bench_machine); $BENCH_REV; load $(bench_load)."
