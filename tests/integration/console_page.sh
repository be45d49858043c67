#!/bin/sh
# console_page: the console part of the status page in headless chromium
# (tests/lib/cdp.py). The Tasks view shows a dead task with its error; its
# retry button (token prompt answered) makes it pending and it ends done; a
# pending task's cancel button makes it dead "cancelled"; the log panel shows
# a line a worker printed, as text (its "<b>" is no element); the crashed
# worker is in Recent deaths (page and `pgwake status`) with its last lines;
# /trends counts the minute's spawns, crashes, busy workers and done tasks
# and the page draws them as four non-empty inline SVG paths. A screenshot
# of each view is saved in the test folder (and kept in
# build/test-logs/console_page/). Skipped (exit 77) without
# chromium or python3-websocket.
. "$ROOT/tests/lib/itest.sh"

CHROME=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
[ -n "$CHROME" ] || { echo "skip: chromium is not installed"; exit 77; }
PY=/usr/bin/python3
$PY -c 'import websocket; websocket.create_connection' 2>/dev/null \
    || { echo "skip: python3-websocket is not installed"; exit 77; }
PORT=$(free_port)
TOKEN=console-page-token
write_conf pgwake.conf <<EOF2
[pgwake]
host = cpage-1
log_dir = $T/logs
recount_interval = 0
http_listen = 127.0.0.1:$PORT
control_token = $TOKEN

[stage:work]
command = sh -c 'echo "hello from a worker, <b>not html</b>"; exec "\$0"' $TESTWORKER
max_workers = 1
idle_timeout = 1h
heartbeat_interval = 1s
heartbeat_timeout = 5s
lease = 30s
restart_delay = 100ms
EOF2
start_ready pgwake.conf

dead=$(q "SELECT pgwake.enqueue('work', '{\"exit\": 3, \"crash_attempts\": 1}', max_attempts => 1)")
wait_sql "SELECT status = 'dead' FROM pgwake.tasks WHERE id = $dead" 20 || fail "task $dead not dead"
err=$(q "SELECT last_error FROM pgwake.tasks WHERE id = $dead")
[ -n "$err" ] || fail "dead task $dead has no last_error"
parked=$(q "SELECT pgwake.enqueue('parked', '{\"n\": 1}')")

"$CHROME" --headless --no-sandbox --disable-gpu --no-first-run --window-size=1280,1600 \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$T/chrome-cdp" --remote-debugging-port=0 about:blank \
    >"$T/chrome.out" 2>"$T/chrome.err" &
CHROME_PID=$!
DAEMON_PIDS="$DAEMON_PIDS $CHROME_PID"
wait_for "[ -s '$T/chrome-cdp/DevToolsActivePort' ]" 20 || fail "chromium opened no DevTools port"
CDP_PORT=$(head -1 "$T/chrome-cdp/DevToolsActivePort")
cdp() {  # cdp NAME [cdp.py args]: one step, its output in $T/cdp-NAME.out
    _n=$1; shift
    timeout 60 $PY "$ROOT/tests/lib/cdp.py" --port "$CDP_PORT" --url "http://127.0.0.1:$PORT/" \
        --timeout 25 "$@" >"$T/cdp-$_n.out" 2>&1
    _rc=$?
    cat "$T/cdp-$_n.out"
    [ $_rc = 0 ] || fail "cdp step $_n exited $_rc"
}
DEAD_FILTER='var s = document.getElementById("tstate"); s.value = "dead"; s.dispatchEvent(new Event("change"));'

note "the dead task $dead with its error: $err"
cdp dead --keep-browser --eval "$DEAD_FILTER" --until-text "$err" --screenshot "$T/tasks-dead.png"
note "retry from the page"
cdp retry --keep-browser --eval "$DEAD_FILTER" --click '#tasks .t-retry' --row "$dead" \
    --prompt-text "$TOKEN" --until-text "retry task $dead: task $dead: pending now" --screenshot "$T/tasks-retried.png"
grep -q '^cdp: prompt ' "$T/cdp-retry.out" || fail "no token prompt"
wait_sql "SELECT status = 'done' FROM pgwake.tasks WHERE id = $dead" 20 || fail "retried task $dead not done"
note "cancel from the page (the token is kept for the tab)"
cdp cancel --keep-browser --click '#tasks .t-cancel' --row "$parked" \
    --until-text "cancel task $parked: task $parked: cancelled" --screenshot "$T/tasks-cancelled.png"
[ "$(q "SELECT status || ' ' || last_error FROM pgwake.tasks WHERE id = $parked")" = "dead cancelled" ] \
    || fail "task $parked not cancelled"
note "the log panel, and the death of the worker that crashed with its last lines"
crashed=$(q "SELECT id FROM pgwake.workers WHERE state = 'dead' ORDER BY ended_at LIMIT 1")
[ -n "$crashed" ] || fail "no dead worker"
q "SELECT last_lines FROM pgwake.workers WHERE id = '$crashed'" | grep -q 'hello from a worker' \
    || fail "worker $crashed's last lines not kept: $(q "SELECT last_lines FROM pgwake.workers WHERE id = '$crashed'")"
cdp log --keep-browser --until-js 'document.getElementById("log").textContent.indexOf("hello from a worker, <b>not html</b>") >= 0 && !document.querySelector("#log b")' \
    --until-text "exit 3" --screenshot "$T/log.png"
"$PGWAKE" status -c "$T/pgwake.conf" -d "$TEST_DSN" >"$T/status.out" 2>&1
grep -q "$crashed .*exit 3" "$T/status.out" && grep -q '| .*hello from a worker' "$T/status.out" \
    || fail "pgwake status shows no death with its lines: $(cat "$T/status.out")"
note "the trend chart: inline SVG with drawn paths"
curl -s --noproxy '*' --max-time 10 "http://127.0.0.1:$PORT/trends" >"$T/trends.json"
$PY -c 'import json,sys; s=json.load(open(sys.argv[1]))["stages"][0]; sys.exit(not (sum(x or 0 for x in s["done"]) >= 1 and sum(s["spawns"]) >= 2 and sum(s["crashes"]) >= 1 and max(s["busy"]) >= 1))' "$T/trends.json" \
    || fail "trends do not show the work: $(cat "$T/trends.json")"
cdp trends --until-js 'document.querySelectorAll("#trends svg path").length === 4 && Array.prototype.every.call(document.querySelectorAll("#trends svg path"), function (p) { return /^M[0-9.]+ [0-9.]+( L[0-9.]+ [0-9.]+){59}$/.test(p.getAttribute("d")); }) && document.querySelector("#trends .s-done").getAttribute("d").split(" L").some(function (pt) { return parseFloat(pt.split(" ")[1]) < 77; })' \
    --screenshot "$T/trends.png"
wait_for "! kill -0 $CHROME_PID" 10 || fail "chromium did not close"
for f in tasks-dead tasks-retried tasks-cancelled log trends; do
    [ -s "$T/$f.png" ] || fail "no screenshot $f.png"
done
# Kept after the test folder goes: the views, for a person to look at.
mkdir -p "$BUILD/test-logs/console_page" && cp "$T"/*.png "$BUILD/test-logs/console_page/"
note "screenshots in $BUILD/test-logs/console_page"
grep -q "$TOKEN" "$T/daemon.log" && fail "the token is in the daemon log"
echo ok
