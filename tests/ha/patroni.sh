#!/bin/sh
# patroni.sh: a two-node Patroni 3.0 cluster (synchronous_mode on) with one
# etcd 3.4, all on loopback and under $T. Source after tests/lib/itest.sh.
#   ha_start            etcd, node1 (bootstraps, leader), node2 (sync standby)
#   ha_leader / ha_replica     the node names, from Patroni's REST API
#   ha_port NODE        PostgreSQL's port of NODE
#   ha_dsn              the multi-host DSN of both (target_session_attrs=read-write)
# PostgreSQL and Patroni run as postgres (initdb refuses root); etcd as us.
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
HA_TTL=${HA_TTL:-10}
HA_LOOP_WAIT=${HA_LOOP_WAIT:-1}
HA_RETRY_TIMEOUT=${HA_RETRY_TIMEOUT:-4}

ha_as() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

ha_start() {
    for c in patroni patronictl etcd; do
        command -v $c >/dev/null || { echo "$c not installed"; exit 77; }
    done
    HA_ETCD_PORT=$(free_port)
    _peer=$(free_port)
    etcd --name e1 --data-dir "$T/etcd" --listen-client-urls "http://127.0.0.1:$HA_ETCD_PORT" \
        --advertise-client-urls "http://127.0.0.1:$HA_ETCD_PORT" \
        --listen-peer-urls "http://127.0.0.1:$_peer" --initial-advertise-peer-urls "http://127.0.0.1:$_peer" \
        --initial-cluster "e1=http://127.0.0.1:$_peer" >"$T/etcd.log" 2>&1 &
    DAEMON_PIDS="$DAEMON_PIDS $!"
    wait_for "curl -sf http://127.0.0.1:$HA_ETCD_PORT/health" 20 || fail "etcd did not start"
    for n in node1 node2; do ha_conf $n; done
    ha_run node1
    wait_for "[ \"\$(ha_leader)\" = node1 ]" 60 || fail "node1 did not bootstrap: $(tail -5 "$T/node1/patroni.log")"
    ha_run node2
    wait_for "[ \"\$(ha_role node2)\" = sync_standby ]" 60 \
        || fail "node2 is not a sync standby: $(tail -5 "$T/node2/patroni.log")"
}

# ha_conf NODE: writes $T/NODE/patroni.yml with free ports.
ha_conf() {
    mkdir -p "$T/$1"
    _pg=$(free_port); _api=$(free_port)
    echo "$_pg" >"$T/$1/pgport"
    echo "$_api" >"$T/$1/apiport"
    cat >"$T/$1/patroni.yml" <<EOF
scope: pgwake-ha
name: $1
log:
  level: INFO
restapi:
  listen: 127.0.0.1:$_api
  connect_address: 127.0.0.1:$_api
etcd3:
  hosts: 127.0.0.1:$HA_ETCD_PORT
bootstrap:
  dcs:
    ttl: $HA_TTL
    loop_wait: $HA_LOOP_WAIT
    retry_timeout: $HA_RETRY_TIMEOUT
    maximum_lag_on_failover: 1048576
    synchronous_mode: true
    postgresql:
      use_pg_rewind: true
      parameters:
        max_connections: 200
        wal_log_hints: 'on'
        fsync: 'off'
        full_page_writes: 'off'
        wal_keep_size: 256MB
  initdb:
    - encoding: UTF8
    - no-locale
    - auth: trust
postgresql:
  listen: 127.0.0.1:$_pg
  connect_address: 127.0.0.1:$_pg
  data_dir: $T/$1/data
  bin_dir: $PG_BIN
  pgpass: $T/$1/pgpass
  authentication:
    superuser: {username: postgres, password: unused}
    replication: {username: postgres, password: unused}
    rewind: {username: postgres, password: unused}
  parameters:
    unix_socket_directories: '$T/$1'
  pg_hba:
    - local all all trust
    - local replication all trust
    - host all all 127.0.0.1/32 trust
    - host replication all 127.0.0.1/32 trust
EOF
    [ "$(id -u)" -eq 0 ] && chown -R postgres: "$T/$1"
}

# ha_run NODE: starts NODE's Patroni; its pid in $T/NODE/patroni.pid.
ha_run() {
    # The config's full path in its command line: itest_cleanup's pkill finds it.
    # From its own folder: postgres may not enter ours (a checkout under /root).
    (cd "$T/$1" && ha_as sh -c "echo \$\$ >'$T/$1/patroni.pid'; exec patroni '$T/$1/patroni.yml'") \
        >>"$T/$1/patroni.log" 2>&1 &
    wait_for "[ -s '$T/$1/patroni.pid' ]" 5
    DAEMON_PIDS="$DAEMON_PIDS $(cat "$T/$1/patroni.pid")"
}

ha_api() { curl -s "http://127.0.0.1:$(cat "$T/$1/apiport")/patroni"; }
ha_role() {  # ha_role NODE: leader | sync_standby | replica | (nothing)
    ha_api "$1" | /usr/bin/python3 -c '
import json, sys
try:
    d = json.load(sys.stdin)
except ValueError:
    sys.exit(0)
print({"master": "leader", "primary": "leader"}.get(d.get("role"), d.get("role"))
      if d.get("role") != "replica" or not d.get("sync_standby") else "sync_standby")' 2>/dev/null
}
ha_cluster() {
    curl -s "http://127.0.0.1:$(cat "$T/node1/apiport")/cluster" 2>/dev/null \
        || curl -s "http://127.0.0.1:$(cat "$T/node2/apiport")/cluster"
}
ha_leader() {
    ha_cluster | /usr/bin/python3 -c '
import json, sys
try:
    d = json.load(sys.stdin)
except ValueError:
    sys.exit(0)
for m in d.get("members", []):
    if m.get("role") == "leader" and m.get("state") == "running":
        print(m["name"])' 2>/dev/null
}
ha_other() { [ "$1" = node1 ] && echo node2 || echo node1; }
ha_port() { cat "$T/$1/pgport"; }
ha_dsn() {
    echo "host=127.0.0.1,127.0.0.1 port=$(ha_port node1),$(ha_port node2) user=postgres dbname=pw target_session_attrs=read-write"
}
ha_q() {  # ha_q NODE SQL: on NODE's unix socket
    psql -X -qAt -v ON_ERROR_STOP=1 -d "host=$T/$1 port=$(ha_port "$1") user=postgres dbname=pw" -c "$2"
}
ha_ctl() { patronictl -c "$T/node1/patroni.yml" "$@"; }
