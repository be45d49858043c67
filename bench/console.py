#!/usr/bin/python3
"""console.py: the measuring half of bench/console.sh (read its header).

Times each call of one page refresh, counts the rows a refresh reads from
pgwake's tables (pg_stat_user_tables), and, given --cdp-port, drives the page
in a running headless chromium over the DevTools protocol. Markdown on stdout.
"""
import argparse
import http.client
import json
import subprocess
import time
import urllib.request

# What one refresh of the page asks for: statuspage.c's refresh() and
# statuspage_console.h's consoleTick() (deaths every 3rd, trends every 5th
# tick; all of them here, the dearest refresh).
REFRESH = ["/status", "/runs?limit=10", "/tasks?limit=50", "/stages/busy/log?lines=200",
           "/deaths", "/trends"]
OTHERS = ["/", "/tasks?state=dead&limit=50", "/tasks?stage=s3&state=dead&limit=50",
          "/tasks?state=pending&limit=50", "/metrics"]
TABLES = ("tasks", "runs", "workers", "task_failures")


def get(port, path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    t0 = time.perf_counter()
    c.request("GET", path)
    r = c.getresponse()
    body = r.read()
    dt = (time.perf_counter() - t0) * 1000
    c.close()
    if r.status != 200:
        raise SystemExit("%s: HTTP %d %s" % (path, r.status, body[:200]))
    return dt, len(body)


def pct(xs, q):
    return xs[min(len(xs) - 1, int(len(xs) * q))]


def psql(dsn, sql):
    return subprocess.run(["psql", "-X", "-qAt", "-d", dsn, "-c", sql], check=True,
                          capture_output=True, text=True).stdout.strip()


def table_reads(dsn):
    rows = psql(dsn, "SELECT relname, seq_scan, seq_tup_read, COALESCE(idx_scan, 0), COALESCE(idx_tup_fetch, 0)"
                     " FROM pg_stat_user_tables WHERE schemaname = 'pgwake'"
                     " AND relname IN ('tasks', 'runs', 'workers', 'task_failures')")
    out = {}
    for line in rows.splitlines():
        name, *nums = line.split("|")
        out[name] = [int(n) for n in nums]
    return out


def timings(a):
    print("| call | bytes | p50 ms | p99 ms | max ms |")
    print("|---|---:|---:|---:|---:|")
    for path in REFRESH + OTHERS:
        for _ in range(10):
            get(a.port, path)
        ts, size = [], 0
        for _ in range(a.requests):
            dt, size = get(a.port, path)
            ts.append(dt)
        ts.sort()
        print("| `%s`%s | %d | %.2f | %.2f | %.2f |" % (path, " (each refresh)" if path in REFRESH else "",
                                                      size, pct(ts, .5), pct(ts, .99), ts[-1]))
    whole = []
    for _ in range(a.requests):
        t0 = time.perf_counter()
        for path in REFRESH:
            get(a.port, path)
        whole.append((time.perf_counter() - t0) * 1000)
    whole.sort()
    print("| one whole refresh, its calls one after another | | %.2f | %.2f | %.2f |"
          % (pct(whole, .5), pct(whole, .99), whole[-1]))


def reads(a):
    # Backends flush their table counters when idle, at most every 10 s
    # (PostgreSQL 15): read once before, once after, with that pause.
    time.sleep(11)
    before = table_reads(a.dsn)
    for _ in range(a.refreshes):
        for path in REFRESH:
            get(a.port, path)
    time.sleep(11)
    after = table_reads(a.dsn)
    print()
    print("Rows read per refresh (pg_stat_user_tables over %d refreshes; the %d workers' own"
          " heartbeats and claims included, there being no other traffic):" % (a.refreshes, a.workers))
    print()
    print("| table | rows in it | sequential scans | rows by sequential scan | index scans | rows by index |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in TABLES:
        if name not in after:
            continue
        d = [x - y for x, y in zip(after[name], before.get(name, [0, 0, 0, 0]))]
        n = psql(a.dsn, "SELECT count(*) FROM pgwake.%s" % name)
        print("| pgwake.%s | %s | %.2f | %.1f | %.2f | %.1f |"
              % (name, n, d[0] / a.refreshes, d[1] / a.refreshes, d[2] / a.refreshes, d[3] / a.refreshes))


class Page:
    def __init__(self, port):
        targets = json.load(urllib.request.urlopen("http://127.0.0.1:%d/json" % port, timeout=5))
        url = [t for t in targets if t.get("type") == "page"][0]["webSocketDebuggerUrl"]
        import websocket
        self.ws = websocket.create_connection(url, timeout=30)
        self.n = 0

    def call(self, method, params=None):
        self.n += 1
        self.ws.send(json.dumps({"id": self.n, "method": method, "params": params or {}}))
        while True:
            m = json.loads(self.ws.recv())
            if m.get("id") == self.n:
                if "error" in m:
                    raise SystemExit("%s: %s" % (method, m["error"]))
                return m["result"]

    def eval(self, expr):
        return self.call("Runtime.evaluate", {"expression": expr, "returnByValue": True})["result"].get("value")

    def metrics(self):
        return {m["name"]: m["value"] for m in self.call("Performance.getMetrics")["metrics"]}


def browser(a):
    p = Page(a.cdp_port)
    p.call("Performance.enable")
    p.call("Page.enable")
    drawn = ("document.querySelectorAll('#stages tr.worker').length >= %d"
             " && document.querySelectorAll('#tasks tr').length >= 50"
             " && document.querySelectorAll('#trends svg').length > 0" % a.workers)
    loads = []
    for _ in range(5):
        t0 = time.perf_counter()
        p.call("Page.navigate", {"url": "http://127.0.0.1:%d/" % a.port})
        while not p.eval(drawn):
            if time.perf_counter() - t0 > 30:
                raise SystemExit("the page never drew %d workers and a task page" % a.workers)
            time.sleep(0.005)
        loads.append((time.perf_counter() - t0) * 1000)
    loads.sort()
    m0, t0 = p.metrics(), time.perf_counter()
    time.sleep(a.seconds)
    m1, dt = p.metrics(), time.perf_counter() - t0
    rows = p.eval("document.querySelectorAll('#stages tr.worker').length")
    print()
    print("The page in headless chromium (%d worker rows drawn, a page of 50 tasks, %d tasks in the table):"
          % (rows, a.tasks))
    print()
    print("| figure | value |")
    print("|---|---:|")
    print("| navigation to every worker row, the task page and the trends drawn: p50 / max of 5 | %.0f / %.0f ms |"
          % (pct(loads, .5), loads[-1]))
    print("| over %d s of refreshes every 2 s: script time | %.1f ms/s (%.1f %% of a core) |"
          % (a.seconds, 1000 * (m1["ScriptDuration"] - m0["ScriptDuration"]) / dt,
             100 * (m1["ScriptDuration"] - m0["ScriptDuration"]) / dt))
    print("| same: layout and style recalculation | %.1f ms/s |"
          % (1000 * (m1["LayoutDuration"] + m1["RecalcStyleDuration"]
                     - m0["LayoutDuration"] - m0["RecalcStyleDuration"]) / dt))
    print("| same: all main-thread tasks | %.1f ms/s |" % (1000 * (m1["TaskDuration"] - m0["TaskDuration"]) / dt))
    print("| JS heap used, after / at the start | %.1f / %.1f MiB |"
          % (m1["JSHeapUsedSize"] / 2**20, m0["JSHeapUsedSize"] / 2**20))
    print("| DOM nodes, after / at the start | %d / %d |" % (m1["Nodes"], m0["Nodes"]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--dsn", required=True)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--refreshes", type=int, default=50)
    ap.add_argument("--workers", type=int, default=200)
    ap.add_argument("--tasks", type=int, default=0)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--cdp-port", type=int)
    a = ap.parse_args()
    print("%d tasks in pgwake.tasks, %d live workers of stage `busy`, 100 dead workers with last lines;"
          " 20,000 exited ones; one client, a new connection per request." % (a.tasks, a.workers))
    print()
    timings(a)
    reads(a)
    if a.cdp_port:
        browser(a)


if __name__ == "__main__":
    main()
