#!/bin/sh
# chaos.sh: the chaos suite (`make chaos`; its short form is
# tests/integration/chaos_short.sh). One scenario against the real daemon,
# real workers (build/workers/testworker) and a real PostgreSQL: tasks over
# three stages chained by fan-out (a -> 2 b -> 1 c each), while, at random
# moments, the suite
#   - SIGKILLs a random live worker of this run (every ~200 ms; a few times in
#     the short form),
#   - SIGSTOPs one busy worker and leaves it stopped: it must be declared dead
#     at its heartbeat deadline, its lease released, its group killed,
#   - restarts PostgreSQL with `pg_ctl restart -m immediate` (twice; once in
#     the short form),
#   - SIGKILLs the daemon once and starts it again with the same config.
# Then it asserts from the database and the workers' event log: every task
# done; each completed exactly once (one accepted complete per task, with the
# lease token the database kept; no follow-up enqueued twice); sampled every
# second outside the outages, no lease more than 2 s past its lease_until and
# no lease held by a dead worker; no process of the run left and no zombie;
# the daemon ended with exit 0, no stage FATAL. It prints a one-screen report:
# tasks, faults by kind, re-executions, worst lease overdue, duration.
#
#   sh tests/chaos/chaos.sh           5,000 tasks (1,000 a, 2,000 b, 2,000 c)
#   sh tests/chaos/chaos.sh --short   500 tasks, fewer faults, well under 60 s
#
# Database: $TEST_DSN when set (tests/run.sh: a fresh migrated database; the
# PostgreSQL restarts need the runner's private cluster, $PGTMP_DIR, and are
# skipped without one), else a private throwaway cluster (tests/lib/pgtmp.sh).
# The scenario runs under tests/chaos/reaper (a child subreaper: PID 1 here
# reaps no orphans, and killing the daemon orphans its workers), built on
# first use into $BUILD/chaos/. Knobs: CHAOS_A (a-tasks; each makes 5 tasks),
# CHAOS_SLEEP_MS (work per task), CHAOS_KEEP=1 (keep the run's folder; it is
# kept anyway when the run fails).
set -u
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${BUILD:-$ROOT/build}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
MODE=long
[ "${1:-}" = --short ] && MODE=short

# ---------------------------------------------------------------- the subreaper

if [ -z "${CHAOS_DIR:-}" ]; then
    if [ "${VALGRIND:-0}" = 1 ]; then
        echo "chaos: not under valgrind (timing faults need the real speed)"; exit 77
    fi
    reaper="$BUILD/chaos/reaper"
    if [ ! -x "$reaper" ] || [ "$ROOT/tests/chaos/reaper.c" -nt "$reaper" ]; then
        mkdir -p "$BUILD/chaos" || exit 1
        ${CC:-cc} -std=c11 -O2 -Wall -Wextra -Werror -o "$reaper.$$" "$ROOT/tests/chaos/reaper.c" \
            && mv -f "$reaper.$$" "$reaper" || { echo "chaos: unable to build $reaper" >&2; exit 1; }
    fi
    for f in "$BUILD/pgwake" "$BUILD/workers/testworker"; do
        [ -x "$f" ] || { echo "chaos: $f missing: run make first" >&2; exit 1; }
    done
    CHAOS_DIR=$(mktemp -d /tmp/pgwake-chaos.XXXXXX) || exit 1
    chmod 755 "$CHAOS_DIR"
    export CHAOS_DIR ROOT BUILD
    # exec: a signal for us (timeout, Ctrl-C) reaches the reaper, which passes it on.
    exec "$reaper" -l "$CHAOS_DIR/reaper.log" -k "$CHAOS_DIR/keep.pids" -g 5000 sh "$0" "$@"
fi

# ---------------------------------------------------------------- settings

T=$CHAOS_DIR
RUN_ID=$(basename "$T")           # in the daemon's environment, so in every worker's
HOST="chaos-${RUN_ID#pgwake-chaos.}"
PGWAKE="$BUILD/pgwake"
TESTWORKER="$BUILD/workers/testworker"
EVENTS="$T/worker-events.log"     # TESTWORKER_LOG
REAPER_PID=$PPID
HB_TIMEOUT_S=2
SKIP_S=5                          # samples this close after a restart are not judged
OVERDUE_LIMIT=2                   # seconds past lease_until a lease may be seen
if [ "$MODE" = short ]; then
    A=${CHAOS_A:-100}
    SLEEP_MS=${CHAOS_SLEEP_MS:-150}
    KILL_EVERY="500 1500"         # ms between worker kills, uniform
    KILL_COUNT=5                  # at most
    FAULTS="sigstop:10-20 pg:35-45 daemon:55-65"   # kind:percent-of-tasks-done range
    DONE_CEILING=120              # s for the rest of the work after the last fault
    MIN_JUDGED=2                  # lease samples outside the outages, at least
else
    A=${CHAOS_A:-1000}
    SLEEP_MS=${CHAOS_SLEEP_MS:-150}
    KILL_EVERY="100 300"
    KILL_COUNT=0                  # no limit
    FAULTS="sigstop:8-15 pg:22-32 daemon:42-52 pg:62-72"
    DONE_CEILING=600
    MIN_JUDGED=20
fi
N=$((A * 5))
NB=$((A * 2))
NC=$((A * 2))

now_ms() { date +%s%3N; }
START_MS=$(now_ms)
say() { _e=$(($(now_ms) - START_MS)); printf '[%4d.%ds] %s\n' $((_e / 1000)) $((_e % 1000 / 100)) "$*"; }
event() { echo "$(now_ms) $*" >>"$T/faults.log"; }
# rnd LO HI: a random integer in [LO, HI].
rnd() { awk -v s="$(od -An -N4 -tu4 /dev/urandom)" -v lo="$1" -v hi="$2" \
        'BEGIN { srand(s); print int(lo + rand() * (hi - lo + 1)) }'; }
ms_s() { awk -v m="$1" 'BEGIN { printf "%.3f", m / 1000 }'; }

q() { PGCONNECT_TIMEOUT=10 PGOPTIONS="-c statement_timeout=30s" \
      psql -X -qAt -F ' ' -v ON_ERROR_STOP=1 -d "$DSN" -c "$1"; }

# wait_for CMD TIMEOUT_S: polls a shell condition every 100 ms.
wait_for() {
    _deadline=$(($(now_ms) + $2 * 1000))
    while [ "$(now_ms)" -lt $_deadline ]; do
        eval "$1" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 1
}
wait_sql() { wait_for "[ \"\$(q \"$1\")\" = t ]" "$2"; }

FAILED=0
fail() {
    FAILED=1
    say "FAIL: $*" >&2
    for f in "$T"/daemon-*.log; do
        [ -f "$f" ] && { echo "--- $f (last lines)"; tail -25 "$f"; } >&2
    done
    exit 1
}

# our_procs: pids of every live process of this run (the daemon and workers
# carry CHAOS_RUN in their environment; zombies have none and are not listed).
our_procs() { grep -lzx "CHAOS_RUN=$RUN_ID" /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3; }
our_workers() {
    for _p in $(our_procs); do
        grep -qz '^PGWAKE_STAGE=' "/proc/$_p/environ" 2>/dev/null && echo "$_p"
    done
}
# zombies PPIDS...: zombie processes whose parent is one of PPIDS.
zombies() {
    cat /proc/[0-9]*/stat 2>/dev/null | awk -v pp=" $* " '
        { pid = $1; sub(/^.*\) /, ""); if ($1 == "Z" && index(pp, " " $2 " ")) print pid }'
}

DPID=""
KILLER=""
SAMPLER=""
OWN_PG=0
cleanup() {
    touch "$T/stop"
    if [ -n "$DPID" ]; then
        kill -TERM "$DPID" 2>/dev/null
        wait_for "! kill -0 $DPID" 10 || kill -KILL "$DPID" 2>/dev/null
        wait "$DPID" 2>/dev/null
    fi
    for p in $KILLER $SAMPLER; do kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    for p in $(our_procs); do kill -KILL "$p" 2>/dev/null; done
    [ "$OWN_PG" = 1 ] && pgtmp_stop
    if [ "$FAILED" = 1 ] || [ "${CHAOS_KEEP:-0}" = 1 ]; then
        echo "chaos: kept $T (daemon-*.log, worker-events.log, kills.log, samples.log, faults.log)"
    else
        rm -rf "$T"
    fi
}
trap cleanup EXIT
trap 'FAILED=1; exit 130' INT TERM HUP

# ---------------------------------------------------------------- database

. "$ROOT/tests/lib/pgtmp.sh"
if [ -n "${TEST_DSN:-}" ]; then
    DSN=$TEST_DSN
else
    pgtmp_start >/dev/null || fail "unable to start a private PostgreSQL"
    OWN_PG=1
    psql -X -q -d "$PGTMP_DSN dbname=postgres" -c "CREATE DATABASE chaos" || fail "CREATE DATABASE"
    DSN="$PGTMP_DSN dbname=chaos"
    "$PGWAKE" migrate -d "$DSN" >/dev/null || fail "migrate failed"
fi
CAN_RESTART_PG=0
[ -n "${PGTMP_DIR:-}" ] && [ -d "$PGTMP_DIR/data" ] && CAN_RESTART_PG=1

# ---------------------------------------------------------------- the daemon

PORT=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
{
    echo "[pgwake]"
    echo "host = $HOST"
    echo "log_dir = $T/logs"
    echo "http_listen = 127.0.0.1:$PORT"
    echo "lock_file = $T/pgwake.lock"
    echo "recount_interval = 0"
    for s in a b c; do
        cat <<EOF

[stage:$s]
command = $TESTWORKER
min_workers = 0
max_workers = 4
idle_timeout = 3s
lease = 30s
heartbeat_interval = 500ms
heartbeat_timeout = ${HB_TIMEOUT_S}s
; this scenario kills on purpose: never FATAL, restart fast
max_restarts = 0
restart_delay = 50ms
restart_delay_max = 200ms
restart_window = 1m
stop_timeout = 5s
kill_timeout = 1s
EOF
    done
} >"$T/chaos.conf"
chmod 600 "$T/chaos.conf"

DAEMON_N=0
start_daemon() {
    DAEMON_N=$((DAEMON_N + 1))
    DLOG="$T/daemon-$DAEMON_N.log"
    env CHAOS_RUN="$RUN_ID" TESTWORKER_LOG="$EVENTS" \
        "$PGWAKE" run -c "$T/chaos.conf" -d "$DSN" >>"$DLOG" 2>&1 &
    DPID=$!
    wait_for "grep -q ' ready: ' '$DLOG'" 60 || fail "daemon $DAEMON_N not ready within 60 s"
}

# ---------------------------------------------------------------- background: killer, sampler

# is_ours PID WORKER_ID: PID is a worker of this run with that id (pids get recycled).
is_ours() {
    [ "$(tr '\0' '\n' 2>/dev/null <"/proc/$1/environ" | grep -cx -e "CHAOS_RUN=$RUN_ID" -e "PGWAKE_WORKER_ID=$2")" = 2 ]
}

# killer: every KILL_EVERY ms, a random live worker of this host. Each task has
# max_attempts 5 (the follow-ups get pgwake.enqueue's default), and a released
# task at its last attempt goes dead by design; so that the faults together can
# never exhaust a task, a worker is SIGKILLed only when it holds no lease or a
# lease on a first attempt: it is SIGSTOPped, what it holds is read, then it
# gets SIGKILL (or SIGCONT: "spared"). A stopped worker cannot claim, so what
# was read is what dies. On request ($T/hang.req) it instead leaves one worker
# holding a first-attempt lease stopped, and never touches it again.
killer() {
    n=0
    due=$(now_ms)
    while [ ! -e "$T/stop" ]; do
        # the next moment, counted from the last one (not from the end of the
        # last iteration's work), unless that is past already
        due=$((due + $(rnd $KILL_EVERY)))
        now=$(now_ms)
        [ $due -lt $now ] && due=$now
        while [ ! -e "$T/stop" ] && [ ! -e "$T/hang.req" ]; do
            left=$((due - $(now_ms)))
            [ $left -gt 0 ] || break
            sleep "$(ms_s $((left > 100 ? 100 : left)))"
        done
        [ -e "$T/stop" ] && break
        if [ -e "$T/pause" ]; then   # the daemon fault picks its own victims
            touch "$T/paused"
            sleep 0.05
            continue
        fi
        hang=0
        [ -e "$T/hang.req" ] && hang=1
        [ "$hang" = 0 ] && [ "$KILL_COUNT" -gt 0 ] && [ "$n" -ge "$KILL_COUNT" ] && continue
        hung=$(cut -d' ' -f1 "$T/hung" 2>/dev/null)
        want="COALESCE(max(t.attempts), 0) <= 1"
        [ "$hang" = 1 ] && want="count(t.id) = 1 AND max(t.attempts) = 1"
        row=$(q "SELECT w.id, w.pid FROM pgwake.workers w
                   LEFT JOIN pgwake.tasks t ON t.lease_owner = w.id AND t.status = 'leased'
                  WHERE w.host = '$HOST' AND w.state IN ('starting', 'alive') AND w.pid IS NOT NULL
                    AND w.id <> '${hung:-none}'
                  GROUP BY w.id, w.pid HAVING $want ORDER BY random() LIMIT 1" 2>/dev/null) || continue
        [ -n "$row" ] || continue
        wid=${row% *}
        pid=${row#* }
        is_ours "$pid" "$wid" || continue
        kill -STOP "$pid" 2>/dev/null || continue
        held=$(q "SELECT count(*), COALESCE(max(attempts), 0), COALESCE(max(id), 0)
                    FROM pgwake.tasks WHERE lease_owner = '$wid' AND status = 'leased'" 2>/dev/null) \
            || { kill -CONT "$pid"; continue; }
        set -- $held
        if [ "$hang" = 1 ]; then
            if [ "$1" = 1 ] && [ "$2" = 1 ]; then
                echo "$wid $pid $3 $(now_ms)" >"$T/hung.tmp" && mv "$T/hung.tmp" "$T/hung"
                rm -f "$T/hang.req"
            else
                kill -CONT "$pid"
            fi
        elif [ "$2" -le 1 ]; then
            kill -KILL "$pid" && { n=$((n + 1)); echo "$(now_ms) kill $pid $wid $3 $2" >>"$T/kills.log"; }
        else
            kill -CONT "$pid"
            echo "$(now_ms) spared $pid $wid $3 $2" >>"$T/kills.log"
        fi
    done
}

# sampler: once a second, from the database: worst lease overdue (seconds past
# lease_until of a leased task), leases held by a worker that is not live,
# worst heartbeat silence past heartbeat_timeout of a lease holder, tasks done.
sampler() {
    while [ ! -e "$T/stop" ]; do
        t=$(now_ms)
        r=$(q "SELECT GREATEST(COALESCE(round(extract(epoch FROM max(clock_timestamp() - t.lease_until))::numeric, 3), 0), 0),
                      count(*) FILTER (WHERE w.state IS NULL OR w.state NOT IN ('starting', 'alive')),
                      COALESCE(round(max(extract(epoch FROM clock_timestamp() - w.heartbeat_timeout
                          - GREATEST(COALESCE(w.last_heartbeat, w.started_at), pg_postmaster_start_time())))
                          FILTER (WHERE w.state IN ('starting', 'alive'))::numeric, 3), 0),
                      count(*),
                      (SELECT count(*) FROM pgwake.tasks WHERE status = 'done')
                 FROM pgwake.tasks t LEFT JOIN pgwake.workers w ON w.id = t.lease_owner
                WHERE t.status = 'leased'" 2>/dev/null) || r=down
        echo "$t $r" >>"$T/samples.log"
        el=$(($(now_ms) - t))
        [ $el -lt 1000 ] && sleep "$(ms_s $((1000 - el)))"
    done
}

# ---------------------------------------------------------------- faults

done_count() { q "SELECT count(*) FROM pgwake.tasks WHERE status = 'done'" 2>/dev/null || echo 0; }
pct() { echo $(($(done_count) * 100 / N)); }
require_work() {  # a fault that lands after the work is over proves nothing
    left=$(q "SELECT count(*) FROM pgwake.tasks WHERE status <> 'done'" 2>/dev/null)
    [ "${left:-1}" != 0 ] || fail "the work ended before fault '$1': make the tasks longer (CHAOS_SLEEP_MS)"
}

NSTOP=0
NPG=0
NDAEMON=0
SIGSTOP_NOTE=""
PG_NOTE=""
DAEMON_NOTE=""

fault_sigstop() {
    rm -f "$T/hung"
    touch "$T/hang.req"
    wait_for "[ -s '$T/hung' ]" 30 || fail "no busy worker on a first attempt to SIGSTOP within 30 s"
    read -r wid pid task t_stop <"$T/hung"
    NSTOP=$((NSTOP + 1))
    event "sigstop $pid $wid $task"
    say "SIGSTOP worker $wid (pid $pid) holding task $task; heartbeat_timeout ${HB_TIMEOUT_S}s"
    wait_sql "SELECT state = 'dead' FROM pgwake.workers WHERE id = '$wid'" 30 \
        || fail "SIGSTOPped worker $wid not declared dead within 30 s"
    t_dead=$(now_ms)
    reason=$(q "SELECT reason FROM pgwake.workers WHERE id = '$wid'")
    [ "$reason" = "heartbeat timeout" ] || fail "SIGSTOPped worker $wid dead with reason '$reason'"
    [ "$(q "SELECT $task = ANY(released_tasks) FROM pgwake.workers WHERE id = '$wid'")" = t ] \
        || fail "task $task of the hung worker $wid not released"
    [ "$(q "SELECT count(*) FROM pgwake.tasks WHERE lease_owner = '$wid' AND status = 'leased'")" = 0 ] \
        || fail "the hung worker $wid still holds a lease after being declared dead"
    wait_for "! kill -0 $pid" 20 || fail "hung worker $pid still running 20 s after being declared dead"
    t_gone=$(now_ms)
    SIGSTOP_NOTE="declared dead $(ms_s $((t_dead - t_stop)))s after SIGSTOP, gone after $(ms_s $((t_gone - t_stop)))s"
    say "worker $wid declared dead (heartbeat timeout), task $task released, process gone: $SIGSTOP_NOTE"
}

fault_pg() {
    if [ "$CAN_RESTART_PG" = 0 ]; then
        say "PostgreSQL restart skipped: no private cluster (PGTMP_DIR)"
        PG_NOTE="$PG_NOTE skipped"
        return
    fi
    backs=$(grep -c 'database back' "$DLOG")
    NPG=$((NPG + 1))
    t0=$(now_ms)
    event "pg_down"
    say "pg_ctl restart -m immediate"
    pgtmp_restart immediate || fail "pg_ctl restart failed: $(tail -5 "$PGTMP_DIR/postgres.log")"
    event "pg_up"
    t1=$(now_ms)
    # The new postmaster is a descendant of ours now: the reaper must leave a
    # cluster that is not ours (the test runner's) running when we end.
    [ "$OWN_PG" = 1 ] || head -1 "$PGTMP_DIR/data/postmaster.pid" >>"$T/keep.pids"
    wait_for "[ \$(grep -c 'database back' '$DLOG') -gt $backs ]" 60 \
        || fail "the daemon did not reconnect within 60 s of the restart"
    t2=$(now_ms)
    PG_NOTE="$PG_NOTE $(ms_s $((t1 - t0)))s"
    say "PostgreSQL back after $(ms_s $((t1 - t0)))s; daemon reconnected $(ms_s $((t2 - t1)))s later"
}

# fault_daemon: SIGKILL the daemon and start it again. Its workers get SIGTERM
# from their death signal and end by themselves, so that the new daemon's
# own clean-up (SIGKILL every earlier worker still alive with its recorded
# start time, then release_worker) is exercised too, two busy workers are
# SIGSTOPped first: the SIGTERM stays pending and they outlive the daemon.
fault_daemon() {
    touch "$T/pause"
    wait_for "[ -e '$T/paused' ]" 10 || fail "the worker killer did not pause"
    old_ids=$(q "SELECT string_agg(quote_literal(id), ',') FROM pgwake.workers
                  WHERE host = '$HOST' AND state IN ('starting', 'alive')")
    frozen=$(q "SELECT w.id, w.pid FROM pgwake.workers w
                 WHERE w.host = '$HOST' AND w.state = 'alive' AND w.pid IS NOT NULL
                   AND NOT EXISTS (SELECT 1 FROM pgwake.tasks t
                                    WHERE t.lease_owner = w.id AND t.status = 'leased' AND t.attempts > 1)
                 ORDER BY random() LIMIT 2" | while read -r wid pid; do
                    is_ours "$pid" "$wid" && kill -STOP "$pid" && echo "$pid"
                 done | tr '\n' ' ')
    old_pids=$(our_workers | tr '\n' ' ')
    NDAEMON=$((NDAEMON + 1))
    event "daemon_kill $DPID"
    say "SIGKILL the daemon (pid $DPID; its workers: ${old_pids:-none}; SIGSTOPped: ${frozen:-none})"
    kill -KILL "$DPID"
    wait "$DPID" 2>/dev/null
    t0=$(now_ms)
    sleep "$(ms_s "$(rnd 200 1000)")"
    still=""
    for p in $old_pids; do kill -0 "$p" 2>/dev/null && still="$still $p"; done
    start_daemon
    event "daemon_ready $DPID"
    t1=$(now_ms)
    for p in $old_pids; do
        wait_for "! kill -0 $p" 15 || fail "old worker $p still running 15 s after the new daemon was ready"
    done
    if [ -n "$old_ids" ]; then
        wait_sql "SELECT count(*) = 0 FROM pgwake.workers WHERE id IN ($old_ids) AND state IN ('starting', 'alive')" 30 \
            || fail "the old workers' rows are still live 30 s after the restart"
    fi
    rm -f "$T/pause" "$T/paused"
    killed=$(grep -c 'left by an earlier daemon' "$DLOG")
    for p in $frozen; do
        grep -q "\[$p\] left by an earlier daemon" "$DLOG" \
            || fail "the new daemon did not kill the SIGSTOPped old worker $p"
    done
    DAEMON_NOTE="down $(ms_s $((t1 - t0)))s; $(echo $old_pids | wc -w) old workers, $(echo $still | wc -w) alive at restart, $killed killed by the new daemon"
    say "daemon $DAEMON_N ready (pid $DPID): $DAEMON_NOTE"
}

# ---------------------------------------------------------------- the scenario

touch "$T/kills.log" "$T/faults.log"
Z1_BEFORE=$(zombies 1 | wc -l)
say "chaos ($MODE): $N tasks ($A a -> $NB b -> $NC c), sleep_ms $SLEEP_MS, host $HOST, folder $T"
start_daemon
say "daemon 1 ready (pid $DPID)"
killer &
KILLER=$!
sampler &
SAMPLER=$!

WORK0=$(now_ms)
q "INSERT INTO pgwake.tasks(stage, payload)
   SELECT 'a', '{\"sleep_ms\": $SLEEP_MS, \"fanout\": {\"stage\": \"b\", \"count\": 2,
                 \"payload\": {\"sleep_ms\": $SLEEP_MS, \"fanout\": {\"stage\": \"c\", \"count\": 1,
                               \"payload\": {\"sleep_ms\": $SLEEP_MS}}}}}'
     FROM generate_series(1, $A)" >/dev/null || fail "enqueue failed"

for f in $FAULTS; do
    kind=${f%%:*}
    range=${f#*:}
    at=$(( $(rnd "${range%-*}" "${range#*-}") * N / 100 ))
    wait_for "[ \$(done_count) -ge $at ]" 300 || fail "fewer than $at tasks done after 300 s more"
    sleep "$(ms_s "$(rnd 0 700)")"
    require_work "$kind"
    say "$(pct)% done: fault $kind"
    "fault_$kind"
done

say "faults over at $(pct)% done; waiting for the rest"
wait_sql "SELECT count(*) = $N AND bool_and(status = 'done') FROM pgwake.tasks" $DONE_CEILING \
    || fail "not all done $DONE_CEILING s after the last fault: $(q "SELECT string_agg(stage || ' ' || status || ' ' || n, ', ')
              FROM (SELECT stage, status, count(*) n FROM pgwake.tasks GROUP BY 1, 2 ORDER BY 1, 2) s")"
WORK1=$(now_ms)
say "all $N tasks done in $(ms_s $((WORK1 - WORK0)))s"

touch "$T/stop"
wait "$KILLER" "$SAMPLER" 2>/dev/null
KILLER=""
SAMPLER=""
kill -CONT $(our_workers) 2>/dev/null   # none is stopped by now; harmless if one were
t0=$(now_ms)
kill -TERM "$DPID"
wait_for "! kill -0 $DPID" 30 || fail "daemon still running 30 s after SIGTERM"
wait "$DPID"
RC=$?
DPID=""
[ "$RC" = 0 ] || fail "daemon exit code $RC after SIGTERM"
say "daemon stopped (exit 0) in $(ms_s $(($(now_ms) - t0)))s"

# ---------------------------------------------------------------- assertions

# 1. Every task done, and the fan-out made exactly the follow-ups it should (a
#    task completed twice would have enqueued its follow-ups twice).
counts=$(q "SELECT count(*) FILTER (WHERE stage = 'a'), count(*) FILTER (WHERE stage = 'b'),
                   count(*) FILTER (WHERE stage = 'c'), count(*) FILTER (WHERE status <> 'done')
              FROM pgwake.tasks")
[ "$counts" = "$A $NB $NC 0" ] || fail "tasks a b c not-done: $counts, expected $A $NB $NC 0"

# 2. Completed exactly once: one "complete ... ok" line per task, with the lease
#    token the database kept (complete leaves lease_token and lease_owner). A
#    task without such a line must have been completed by a worker that died
#    between its commit and its log line (SIGKILL, or SIGTERM from the daemon's
#    death): the database names that worker, and it must be dead.
q "SELECT t.id, t.lease_token, t.lease_owner, COALESCE(w.state, '-') FROM pgwake.tasks t
     LEFT JOIN pgwake.workers w ON w.id = t.lease_owner" >"$T/tasks.txt" || fail "unable to read tasks"
verdict=$(awk -v n="$N" '
    FNR == NR { tok[$1] = $2; own[$1] = $3; st[$1] = $4; next }
    $1 == "claim" { claims++ }
    $1 == "complete" && $4 == "ok" {
        ok[$2]++; oks++
        if (!($2 in tok)) bad = bad " unknown-task:" $2
        else if (tok[$2] != $3) bad = bad " stale-token:" $2
    }
    $1 == "complete" && $4 != "ok" { other[$4]++ }
    $1 == "fail" && $4 == "ok" { fails++ }
    END {
        for (id in tok) {
            if (!(id in ok)) { if (st[id] == "dead") unlogged++; else bad = bad " unexplained:" id "(" own[id] " " st[id] ")" }
            else if (ok[id] > 1) dup++
        }
        printf "%d %d %d %d %d %d %d %d%s\n", oks, dup, unlogged, claims, other["fenced"], other["error"], other["stopped"], fails, bad
    }' "$T/tasks.txt" "$EVENTS")
set -- $verdict
OKS=$1 DUPS=$2 UNLOGGED=$3 CLAIMS=$4 FENCED=$5 CERR=$6 CSTOP=$7 FAILS=$8
shift 8
[ "$DUPS" = 0 ] || fail "$DUPS tasks completed more than once"
[ $# = 0 ] || fail "completes not matching the database: $(echo "$*" | cut -c1-300)"
[ $((OKS + UNLOGGED)) = "$N" ] || fail "$OKS ok completes + $UNLOGGED unlogged <> $N"

# 3. Samples outside the outages: no lease past lease_until by more than 2 s,
#    no lease held by a dead worker.
skip_ms=$((SKIP_S * 1000))
sampled=$(awk -v skip="$skip_ms" -v lim="$OVERDUE_LIMIT" '
    FNR == NR {    # faults.log: outage windows, from the fault to its end + skip
        if ($2 == "pg_down" || $2 == "daemon_kill") { open_at = $1; opened = 1 }
        if ($2 == "pg_up" || $2 == "daemon_ready") { ws[++nw] = open_at; we[nw] = $1 + skip; opened = 0 }
        next
    }
    {
        total++
        if (opened && $1 >= open_at) { skipped++; next }
        for (i = 1; i <= nw; i++) if ($1 >= ws[i] && $1 <= we[i]) { skipped++; next }
        if ($2 == "down") { down++; next }
        judged++
        if ($2 + 0 > maxo) maxo = $2 + 0
        if ($3 + 0 > maxorph) maxorph = $3 + 0
        if ($4 + 0 > maxsil) maxsil = $4 + 0
        if ($2 + 0 > lim) over++
    }
    END { printf "%d %d %d %d %.3f %d %.3f %d\n", total, skipped, down, judged, maxo, maxorph, maxsil, over }
' "$T/faults.log" "$T/samples.log")
set -- $sampled
S_TOTAL=$1 S_SKIP=$2 S_DOWN=$3 S_JUDGED=$4 MAX_OVERDUE=$5 MAX_ORPHAN=$6 MAX_SILENT=$7 S_OVER=$8
[ "$S_JUDGED" -ge "$MIN_JUDGED" ] || fail "only $S_JUDGED lease samples outside the outages"
[ "$S_OVER" = 0 ] || fail "$S_OVER samples saw a lease more than ${OVERDUE_LIMIT}s past lease_until (max ${MAX_OVERDUE}s; $T/samples.log)"
[ "$MAX_ORPHAN" = 0 ] || fail "samples saw up to $MAX_ORPHAN leases held by dead workers ($T/samples.log)"

# 4. No stage FATAL, nothing live left in the database.
[ "$(q "SELECT count(*) FROM pgwake.stage_state WHERE host = '$HOST' AND state <> 'running'")" = 0 ] \
    || fail "a stage is not running: $(q "SELECT stage || ' ' || state || ' ' || coalesce(reason, '') FROM pgwake.stage_state WHERE host = '$HOST'")"
grep -q 'stage is FATAL' "$T"/daemon-*.log && fail "a stage went FATAL"
[ "$(q "SELECT count(*) FROM pgwake.workers WHERE host = '$HOST' AND state IN ('starting', 'alive')")" = 0 ] \
    || fail "worker rows still live after the daemon stopped"

# 5. No process of the run left, no zombie (our orphans come to the reaper,
#    which reaps them at once; anything it still has at the end fails the run).
left=$(our_procs | tr '\n' ' ')
[ -z "$left" ] || fail "processes of this run still running: $left"
zs=$(zombies $$ "$REAPER_PID" | tr '\n' ' ')
[ -z "$zs" ] || fail "zombies left: $zs"
Z1_AFTER=$(zombies 1 | wc -l)
ORPHANS=$(grep -c '^orphan [0-9]* testworker ' "$T/reaper.log")
ORPHANS_OTHER=$(($(grep -c '^orphan ' "$T/reaper.log") - ORPHANS))

# ---------------------------------------------------------------- report

KILLS=$(grep -c ' kill ' "$T/kills.log" 2>/dev/null)
SPARED=$(grep -c ' spared ' "$T/kills.log" 2>/dev/null)
KILLS_BUSY=$(awk '$2 == "kill" && $5 != 0' "$T/kills.log" 2>/dev/null | wc -l)
reexec=$(q "SELECT sum(releases), count(*) FILTER (WHERE releases > 0), sum(attempts - 1), max(attempts)
              FROM pgwake.tasks")
set -- $reexec
REL=$1 REL_TASKS=$2 ATT=$3 MAXATT=$4
workers=$(q "SELECT count(*), count(*) FILTER (WHERE state = 'exited'), count(*) FILTER (WHERE state = 'dead')
               FROM pgwake.workers WHERE host = '$HOST'")
reasons=$(q "SELECT string_agg(r || ' ' || n, ', ' ORDER BY n DESC) FROM (
               SELECT reason r, count(*) n FROM pgwake.workers WHERE host = '$HOST' AND state = 'dead'
                GROUP BY 1) s")
END_MS=$(now_ms)
{
    echo
    echo "pgwake chaos ($MODE): PASS"
    echo "  tasks          $N ($A a -> $NB b -> $NC c, sleep_ms $SLEEP_MS), all done"
    echo "  completes      $N accepted, one per task, each with the database's lease token:"
    echo "                 $OKS logged ok + $UNLOGGED by workers killed between commit and log line;"
    echo "                 not accepted: $FENCED fenced, $CERR error, $CSTOP stopped ($FAILS tasks failed for retry"
    echo "                 instead); follow-ups exact"
    echo "  faults         worker SIGKILL $KILLS ($KILLS_BUSY mid-task; $SPARED spared: lease on a 2nd+ attempt)"
    echo "                 SIGSTOP $NSTOP: $SIGSTOP_NOTE"
    echo "                 PostgreSQL restart -m immediate $NPG (down:${PG_NOTE:- none})"
    echo "                 daemon SIGKILL $NDAEMON: $DAEMON_NOTE"
    echo "  re-executions  sum(releases) $REL on $REL_TASKS tasks; sum(attempts - 1) $ATT; max attempts $MAXATT;"
    echo "                 claims logged $CLAIMS ($((CLAIMS - N)) more than tasks)"
    set -- $workers
    echo "  workers        $1 spawned: $2 exited, $3 dead ($reasons)"
    echo "  lease samples  $S_TOTAL taken, $S_JUDGED judged ($S_SKIP within ${SKIP_S}s of a restart, $S_DOWN database down)"
    echo "                 max lease overdue ${MAX_OVERDUE}s (limit ${OVERDUE_LIMIT}s); leases of dead workers $MAX_ORPHAN;"
    echo "                 max heartbeat silence of a lease holder past its timeout ${MAX_SILENT}s"
    echo "  processes      none left, no zombie; the subreaper reaped $ORPHANS orphaned workers and"
    echo "                 $ORPHANS_OTHER other orphans (postmasters daemonized by pg_ctl); zombies"
    echo "                 under PID 1 (anyone's, not judged): $Z1_BEFORE before, $Z1_AFTER after"
    echo "  duration       work $(ms_s $((WORK1 - WORK0)))s, total $(ms_s $((END_MS - START_MS)))s"
} | tee "$T/report.txt"
exit 0
