#!/bin/sh
# patroni_failover: the daemon and its workers on a two-node Patroni cluster
# (synchronous_mode on, one etcd) through a multi-host DSN with
# target_session_attrs=read-write. Under load (1,000 tasks, workers busy): a
# planned switchover (patronictl switchover), then an unplanned failover
# (SIGKILL of the leader's Patroni and postmaster). Each time the daemon
# serves from the new primary within ttl + loop_wait + a few seconds,
# /healthz is 503 in between and 200 after, and the daemon is not left on the
# demoted server. In the end every task is done, none completed twice, and no
# worker was declared dead because of the failovers (by the daemon or by
# expire_leases). Prints the switchover and failover times.
. "$ROOT/tests/lib/itest.sh"
. "$ROOT/tests/ha/patroni.sh"
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
SLACK_MS=${HA_SLACK_MS:-15000} # "a few seconds" beyond ttl + loop_wait, with the reconnect backoff

ha_start
psql -X -q -d "host=$T/node1 port=$(ha_port node1) user=postgres dbname=postgres" -c "CREATE DATABASE pw" \
    || fail "createdb"
DSN=$(ha_dsn)
"$PGWAKE" migrate -d "$DSN" >/dev/null || fail "migrate"
TEST_DSN=$DSN

write_conf pgwake.conf <<EOF2
[pgwake]
host = ha-1
log_dir = $T/logs

[stage:a]
command = $TESTWORKER
max_workers = 4
idle_timeout = 1m
heartbeat_interval = 1s
heartbeat_timeout = 5s
lease = 2m
restart_delay = 200ms
EOF2
URL="http://$(sed -n 's/^http_listen = //p' "$T/pgwake.conf")"
"$PGWAKE" run -c "$T/pgwake.conf" -d "$DSN" >"$T/daemon.log" 2>&1 &
DAEMON_PID=$!
DAEMON_PIDS="$DAEMON_PIDS $DAEMON_PID"
wait_for_log ' ready: ' 30 || fail "daemon not ready"

# /healthz every 100 ms: "ms code" lines.
( while :; do
      echo "$(now_ms) $(curl -s -m 1 -o /dev/null -w '%{http_code}' "$URL/healthz")"
      sleep 0.1
  done ) >"$T/healthz.log" 2>/dev/null &
DAEMON_PIDS="$DAEMON_PIDS $!"

# expire_leases every 200 ms on whichever server is primary, as pg_cron would
# run it there (a job it runs right after a promotion must not declare the
# workers dead that the failover kept from heartbeating).
( while :; do
      psql -X -qAt -d "$DSN connect_timeout=2" \
          -c "SELECT 'expired', now(), * FROM pgwake.expire_leases() WHERE dead_workers <> '{}'"
      sleep 0.2
  done ) >"$T/expire.log" 2>/dev/null &
DAEMON_PIDS="$DAEMON_PIDS $!"

# back_after MS: first time at or after MS when /healthz answered 200 after a
# non-200 answer (also after MS); empty when it has not happened yet.
back_after() {
    awk -v t="$1" '$1 >= t && $2 != 200 {down = 1} $1 >= t && down && $2 == 200 {print $1; exit}' "$T/healthz.log"
}
enqueue() {
    q "INSERT INTO pgwake.tasks(stage, payload) SELECT 'a', '{\"sleep_ms\": 100}' FROM generate_series(1, $1)" >/dev/null
}
not_done() { q "SELECT string_agg(status || ' ' || n, ', ') FROM (SELECT status, count(*) n FROM pgwake.tasks GROUP BY 1) s"; }
ttl_ms=$(( (HA_TTL + HA_LOOP_WAIT) * 1000 ))

enqueue 500
wait_sql "SELECT count(*) >= 20 FROM pgwake.tasks WHERE status = 'done'" 30 || fail "no progress: $(not_done)"

note "planned switchover node1 -> node2"
t_sw=$(now_ms)
ha_ctl switchover --leader node1 --candidate node2 --force >"$T/switchover.log" 2>&1 \
    || fail "switchover failed: $(cat "$T/switchover.log")"
wait_for "[ \"\$(ha_leader)\" = node2 ]" 60 || fail "node2 did not become leader"
wait_for "[ -n \"\$(back_after $t_sw)\" ]" 60 || fail "the daemon did not come back after the switchover"
sw_ms=$(( $(back_after $t_sw) - t_sw ))
note "switchover: /healthz 200 again after $sw_ms ms"
[ "$sw_ms" -lt $((ttl_ms + SLACK_MS)) ] || fail "switchover took $sw_ms ms"
wait_for "[ \"\$(ha_role node1)\" = sync_standby ]" 60 || fail "node1 did not rejoin as sync standby"
[ "$(ha_q node1 "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgwake'")" = 0 ] \
    || fail "the daemon stayed on the demoted node1"
[ "$(ha_q node2 "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgwake'")" -ge 1 ] \
    || fail "the daemon is not on node2"

enqueue 500
wait_sql "SELECT count(*) >= 20 FROM pgwake.tasks WHERE status = 'pending'" 10
note "unplanned failover: SIGKILL node2's Patroni and postmaster"
pm=$(head -1 "$T/node2/data/postmaster.pid")
t_kill=$(now_ms)
kill -KILL "$(cat "$T/node2/patroni.pid")" "$pm"
wait_for "[ \"\$(ha_leader)\" = node1 ]" 90 || fail "node1 was not promoted"
t_promoted=$(now_ms)
wait_for "[ -n \"\$(back_after $t_kill)\" ]" 90 || fail "the daemon did not come back after the failover"
fo_ms=$(( $(back_after $t_kill) - t_kill ))
note "failover: node1 leader after $((t_promoted - t_kill)) ms, /healthz 200 again after $fo_ms ms (ttl + loop_wait = $ttl_ms ms)"
[ "$fo_ms" -lt $((ttl_ms + SLACK_MS)) ] || fail "failover took $fo_ms ms"

wait_sql "SELECT count(*) = 1000 AND bool_and(status = 'done') FROM pgwake.tasks" 120 || fail "not all done: $(not_done)"
dups=$(awk '$1 == "complete" && $4 == "ok" {n[$2]++} END {d = 0; for (k in n) if (n[k] > 1) d++; print d}' "$TESTWORKER_LOG")
[ "$dups" = 0 ] || fail "$dups tasks completed more than once"
dead=$(q "SELECT count(*) FROM pgwake.workers WHERE state = 'dead'")
[ "$dead" = 0 ] || fail "$(cat "$T/expire.log"; echo) $dead workers declared dead: $(q "SELECT string_agg(id || ' ' || COALESCE(reason, '?'), '; ') FROM pgwake.workers WHERE state = 'dead'")"
grep -q 'stage is FATAL' "$T/daemon.log" && fail "a stage went FATAL"
[ "$(tail -1 "$T/healthz.log" | cut -d' ' -f2)" = 200 ] || fail "/healthz not 200 at the end"
note "tasks run more than once (a lease cut by a failover; completed once): $(q "SELECT count(*) FROM pgwake.tasks WHERE attempts > 1")"
echo "RESULT switchover_ms=$sw_ms failover_ms=$fo_ms promote_ms=$((t_promoted - t_kill)) ttl=$HA_TTL loop_wait=$HA_LOOP_WAIT"
stop_daemon
[ "$RC" = 0 ] || fail "daemon exit code $RC"
echo ok
