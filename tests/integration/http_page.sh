#!/bin/sh
# http_page: the status page at / in a real browser (headless chromium): its
# script fetches /status and /runs and shows every stage, its workers, the
# recent runs with progress bars and the control buttons, with nothing loaded
# from elsewhere. Skipped (exit 77) when chromium is not installed.
. "$ROOT/tests/lib/itest.sh"

CHROME=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -z "$CHROME" ]; then
    echo "skip: chromium is not installed (apt-get install -y chromium)"
    exit 77
fi

PY=/usr/bin/python3
PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
write_conf pgwake.conf <<EOF2
[pgwake]
host = page-1
log_dir = $T/logs
recount_interval = 0
http_listen = 127.0.0.1:$PORT
control_token = page-secret-token

[stage:company_discovery]
command = $TESTWORKER
min_workers = 1
max_workers = 2
idle_timeout = 1h
heartbeat_interval = 1s
heartbeat_timeout = 5s
lease = 30s

[stage:company_research]
command = $TESTWORKER
max_workers = 2
idle_timeout = 1h
heartbeat_interval = 1s
heartbeat_timeout = 5s
lease = 30s
EOF2

start_ready pgwake.conf
run=$(q "INSERT INTO pgwake.runs(stage, params) VALUES ('company_discovery', '{\"fanout\": {\"stage\": \"company_research\", \"count\": 2, \"payload\": {}}}') RETURNING id")
wait_sql "SELECT state = 'done' FROM pgwake.v_runs WHERE id = $run" 20 || fail "run $run not done"
wait_sql "SELECT count(*) >= 1 FROM pgwake.workers WHERE stage = 'company_discovery' AND state = 'alive' AND pid IS NOT NULL" 10 \
    || fail "no company_discovery worker"
wid=$(q "SELECT id FROM pgwake.workers WHERE stage = 'company_discovery' AND state = 'alive' ORDER BY id LIMIT 1")

note "loading http://127.0.0.1:$PORT/ in $CHROME"
timeout 90 "$CHROME" --headless --no-sandbox --disable-gpu --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$T/chrome-profile" --virtual-time-budget=5000 \
    --dump-dom "http://127.0.0.1:$PORT/" >"$T/dom.html" 2>"$T/chrome.err"
rc=$?
[ $rc = 0 ] || fail "chromium exited $rc: $(tail -5 "$T/chrome.err")"
grep -q '<strong>company_discovery</strong>' "$T/dom.html" || fail "stage company_discovery not rendered: $(head -c 3000 "$T/dom.html")"
grep -q '<strong>company_research</strong>' "$T/dom.html" || fail "stage company_research not rendered"
grep -q 'on page-1' "$T/dom.html" || fail "host not rendered"
grep -q 'database connected' "$T/dom.html" || fail "database state not rendered"
grep -q "$wid" "$T/dom.html" || fail "worker $wid not rendered"
grep -q "<td>$run</td>" "$T/dom.html" || fail "run $run not in the runs table"
grep -q 'class="bar"><span style="width: 100%;">' "$T/dom.html" || fail "no full progress bar"
[ "$(grep -o '<button type="button">restart</button>' "$T/dom.html" | wc -l)" = 3 ] \
    || fail "not one restart button per stage plus one for all"
! grep -q 'page-secret-token' "$T/dom.html" || fail "the control token is in the page"
echo "ok"
