#!/bin/sh
# bad_notify: 10,000 random notifications (printable and control bytes, any
# UTF-8, up to 7,999 bytes, none of them a well-formed payload) on each of the
# four channels of SPEC section 4, sent to a running daemon. The daemon stays
# alive and healthy, counts every one (/metrics), logs them rate-limited (at
# most 5 per 10 s plus "N more unparseable notifications" summaries that add up
# to exactly 10,000) and escaped (no raw control or non-ASCII byte in its log),
# spawns nothing for them; then an unparseable payload still wakes a silently
# inserted task, and a real task enqueued afterwards is done within 10 s.
. "$ROOT/tests/lib/itest.sh"

PY=/usr/bin/python3
[ -x "$PY" ] || { echo "python3 missing"; exit 77; }
N=10000
# BADLOG_PER_WINDOW and BADLOG_WINDOW_MS in src/daemon.c
PER_WINDOW=5
WINDOW_S=10
PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL="http://127.0.0.1:$PORT"

# metric NAME_WITH_LABELS: its current value from /metrics (empty when absent).
metric() {
    curl -s --noproxy '*' --max-time 10 "$URL/metrics" | awk -v n="$1" '$1 == n {print $2; exit}'
}

write_conf pgwake.conf <<EOF2
[pgwake]
host = badnotify-1
log_dir = $T/logs
recount_interval = 0
http_listen = 127.0.0.1:$PORT

[stage:alpha]
command = $TESTWORKER
max_workers = 2
idle_timeout = 1h
heartbeat_interval = 1s
heartbeat_timeout = 5s
lease = 30s

[stage:beta.2]
command = $TESTWORKER
max_workers = 1
idle_timeout = 1h
heartbeat_interval = 1s
heartbeat_timeout = 5s
lease = 30s
EOF2

note "generate $N random notifications"
# Each payload is unique (so no transaction deduplicates it) and unparseable
# by the rules of SPEC section 4, which the generator mirrors; the SQL file
# sends 50 per transaction. counts.txt: how many went to each channel.
$PY - "$T/notify.sql" "$T/counts.txt" "$N" <<'EOF_PY' || fail "generator failed"
import random, re, sys

out, counts_path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
rng = random.Random(20240611)
channels = ["pgwake_run", "pgwake_task", "pgwake_heartbeat", "pgwake_wake"]
STAGE = re.compile(r"[a-z0-9_][a-z0-9_.-]{0,62}\Z")
STATES = ("starting", "alive", "exited", "dead")

def word_ok(w, limit):
    return 0 < len(w) < limit and all(ord(c) > 0x20 and ord(c) != 0x7F for c in w)

def parseable(ch, p):
    """notify_parse's rules: spaces around the payload are forgiven."""
    b = p.encode()
    s = b.strip(b" ").decode("utf-8", "surrogateescape")
    if ch == "pgwake_run":
        stage, sp, rid = s.partition(" ")
        return bool(sp) and bool(STAGE.match(stage)) and rid.isascii() and rid.isdigit() \
            and 0 < len(rid) <= 19 and 0 < int(rid) < 2**63
    if ch == "pgwake_task":
        return bool(STAGE.match(s))
    if ch == "pgwake_heartbeat":
        wid, sp, state = s.partition(" ")
        return bool(sp) and word_ok(wid, 128) and state in STATES
    return s in ("", "*") or bool(STAGE.match(s))

def rand_char():
    r = rng.random()
    if r < 0.55:
        return chr(rng.randint(0x20, 0x7E))                 # printable ASCII, ' and \ included
    if r < 0.75:
        return chr(rng.choice([*range(0x01, 0x20), 0x7F]))  # control bytes (no NUL)
    lo, hi = rng.choice([(0x80, 0x7FF), (0x800, 0xD7FF), (0xE000, 0xFFFD), (0x10000, 0x10FFFF)])
    return chr(rng.randint(lo, hi))                         # 2, 3 and 4-byte UTF-8, no surrogate

def rand_payload():
    r = rng.random()
    limit = rng.randint(0, 16) if r < 0.3 else rng.randint(17, 400) if r < 0.8 else \
        rng.randint(401, 7999)
    chars, size = [], 0
    while True:
        c = rand_char()
        k = len(c.encode())
        if size + k > limit:
            break
        chars.append(c)
        size += k
    if r < 0.1 and chars:  # a few that look almost right
        chars[0:0] = list(rng.choice(["alpha ", "beta.2", "w-1 ", "* "]))
    return "".join(chars)

def literal(p):
    o = []
    for c in p:
        if c == "\\":
            o.append("\\\\")
        elif c == "'":
            o.append("\\'")
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            o.append("\\x%02x" % ord(c))
        else:
            o.append(c)
    return "E'" + "".join(o) + "'"

seen, counts = set(), dict.fromkeys(channels, 0)
with open(out, "w", encoding="utf-8") as f:
    f.write("SET client_encoding = 'UTF8';\n")
    for i in range(n):
        ch = channels[i % 4] if i < 4 else rng.choice(channels)
        while True:
            p = rand_payload()
            if (ch, p) not in seen and not parseable(ch, p) and len(p.encode()) <= 7999:
                break
        seen.add((ch, p))
        counts[ch] += 1
        if i % 50 == 0:
            f.write("BEGIN;\n")
        f.write("SELECT pg_notify('%s', %s);\n" % (ch, literal(p)))
        if i % 50 == 49 or i == n - 1:
            f.write("COMMIT;\n")
with open(counts_path, "w") as f:
    for ch in channels:
        f.write("%s %d\n" % (ch, counts[ch]))
EOF_PY
sent() { awk -v c="$1" '$1 == c {print $2}' "$T/counts.txt"; }

start_ready pgwake.conf
[ "$(q "SELECT count(*) FROM pgwake.workers")" = 0 ] || fail "a worker started without work"

note "send them: $(wc -c <"$T/notify.sql") bytes of SQL, one psql session"
t0=$(date +%s%N)
psql -X -q -v ON_ERROR_STOP=1 -d "$TEST_DSN" -o /dev/null -f "$T/notify.sql" \
    || fail "psql refused the notifications"
note "sent in $(( ($(date +%s%N) - t0) / 1000000 )) ms"

note "the daemon is alive, healthy, and counted every one"
wait_for "[ \"\$(metric pgwake_notifications_unparseable_total)\" = $N ]" 60 \
    || fail "unparseable notifications counted: $(metric pgwake_notifications_unparseable_total), want $N"
kill -0 "$DAEMON_PID" 2>/dev/null || fail "the daemon died"
code=$(curl -s --noproxy '*' --max-time 10 -o /dev/null -w '%{http_code}' "$URL/healthz")
[ "$code" = 200 ] || fail "/healthz answers $code after the flood"
for ch in pgwake_run pgwake_task pgwake_wake; do
    got=$(metric "pgwake_notifications_total{channel=\"$ch\"}")
    [ "$got" = "$(sent $ch)" ] || fail "$ch: counted $got notifications, sent $(sent $ch)"
done
got=$(metric 'pgwake_notifications_total{channel="pgwake_heartbeat"}')
[ "${got:-0}" -ge "$(sent pgwake_heartbeat)" ] || fail "pgwake_heartbeat: counted $got, sent $(sent pgwake_heartbeat)"
[ "$(q "SELECT count(*) FROM pgwake.workers")" = 0 ] || fail "bad payloads spawned workers (no work exists)"

note "logged rate-limited and escaped"
# Every bad notification is either logged or counted in a summary line once
# its 10 s window ends.
logged_total() {
    $PY - "$T/daemon.log" <<'EOF_PY'
import re, sys
data = open(sys.argv[1], "rb").read().decode("ascii", "replace")
logged = sum(1 for l in data.splitlines() if "unparseable notification on " in l)
more = sum(int(m) for m in re.findall(r" (\d+) more unparseable notifications in the last", data))
print(logged + more)
EOF_PY
}
wait_for "[ \"\$(logged_total)\" = $N ]" $((WINDOW_S * 3)) \
    || fail "logged + summarised bad notifications: $(logged_total), want $N"
$PY - "$T/daemon.log" "$PER_WINDOW" "$WINDOW_S" <<'EOF_PY' || fail "the log is not rate-limited or not escaped"
import datetime, sys
path, per, window = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
data = open(path, "rb").read()
bad = sorted({b for b in data if (b < 0x20 and b != 0x0A) or b >= 0x7F})
if bad:
    sys.exit("raw bytes in the log: %s" % " ".join("%02x" % b for b in bad))
times, escaped, summaries = [], 0, 0
for line in data.decode("ascii").splitlines():
    if "unparseable notification on " in line:
        times.append(datetime.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S.%f").timestamp())
        escaped += "\\x" in line
    summaries += " more unparseable notifications in the last " in line
# no more than `per` lines within any window (a little slack for the timer)
for i in range(len(times) - per):
    if times[i + per] - times[i] < window - 0.5:
        sys.exit("%d unparseable-notification lines within %.1f s" % (per + 1, times[i + per] - times[i]))
if not times or not summaries or not escaped:
    sys.exit("expected logged lines (%d), escaped ones (%d) and summaries (%d)" % (len(times), escaped, summaries))
print("# %d lines logged (%d with \\x escapes), %d summary lines" % (len(times), escaped, summaries))
EOF_PY

note "an unparseable payload still wakes: a silent insert, then one bad notification"
sid=$(psql -X -qAt -d "$TEST_DSN" -c "SET session_replication_role = replica" \
      -c "INSERT INTO pgwake.tasks(stage, payload) VALUES ('beta.2', '{}') RETURNING id" | tail -1)
psql -X -q -d "$TEST_DSN" -c "SELECT pg_notify('pgwake_task', E'\\x01not a stage\\x7f')" -o /dev/null
wait_sql "SELECT status = 'done' FROM pgwake.tasks WHERE id = $sid" 10 \
    || fail "silent task $sid not done after an unparseable notification"

note "a real task afterwards is done promptly"
id=$("$PGWAKE" enqueue -d "$TEST_DSN" alpha '{}') || fail "enqueue failed"
wait_sql "SELECT status = 'done' FROM pgwake.tasks WHERE id = $id" 10 || fail "task $id not done within 10 s"
kill -0 "$DAEMON_PID" 2>/dev/null || fail "the daemon died"

stop_daemon
[ "$RC" = 0 ] || fail "daemon exit code $RC"
echo "ok"
