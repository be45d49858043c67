"""bench/python_worker.py: the Python side of bench/python_worker.sh.

  worker OUT        a pgwake.run worker (no-op handler) that appends, for each task
                    whose payload has "seq", the line `bench/wake produce` reads
                    (seq claim main open pid worker_id first woke claim_start; here
                    "claim" is when the handler was called) to OUT, and to OUT.py
                    "T seq claim_start claim_returned handler first" plus, once per
                    process, "P pid main imported opened" (ns, CLOCK_REALTIME).
                    The times come from a Runner subclass: the library is unchanged.
  split OUT LABEL   RESULT lines from OUT.py: LABEL_import (first line of the script
                    -> import pgwake done), LABEL_open (-> pgwake.Session opened),
                    LABEL_claim_call_only (the claim call), LABEL_begin (claim
                    returned -> handler called);
                    for a LABEL ending in "cold", only each process's first task.
  spawn N           fork + exec + wait of python3 -c pass / import psycopg /
                    import pgwake (RESULT lines py_exec_*).
  throughput DSN WORKERS BATCH TASKS CMD...
                    TASKS pending tasks, VACUUM ANALYZE, then WORKERS processes
                    of CMD in drain mode (self-registered, PGWAKE_CLAIM_BATCH =
                    BATCH); tasks/s over the span of finished_at, and the
                    workers' CPU per task (RESULT bench=throughput ...).
  noop              a drain-mode pgwake.run worker with a no-op handler.
  report RESULTS    the Markdown tables of bench/python_worker.sh from its RESULT lines.
"""

import time

T_MAIN = time.time_ns()

import os  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "python"))


def pct(v, p):
    """pct is the nearest-rank percentile, as bench/lib/benchlib.c computes it."""
    k = max(1, min(len(v), int(-(-p * len(v) // 1))))
    return v[k - 1]


def result(bench, ns, extra=""):
    v = sorted(ns)
    if not v:
        return
    us = [x / 1000 for x in v]
    print(f"RESULT bench={bench} n={len(v)} min_us={us[0]:.1f} p50_us={pct(us, .5):.1f} "
          f"p90_us={pct(us, .9):.1f} p99_us={pct(us, .99):.1f} max_us={us[-1]:.1f} "
          f"mean_us={sum(us) / len(us):.1f}{' ' + extra if extra else ''}", flush=True)


def mode_worker(out):
    import pgwake
    from pgwake import runner

    t_imported = time.time_ns()
    state = {"claim_start": 0, "claim_ret": 0, "woke": 0, "first": 1, "opened": 0}
    fd = os.open(out, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    side = os.open(out + ".py", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    class TimedSession(runner.Session):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            state["opened"] = time.time_ns()
            os.write(side, f"P {os.getpid()} {T_MAIN} {t_imported} {state['opened']}\n".encode())

    class TimedRunner(runner.Runner):
        def claim(self, n):
            state["claim_start"] = time.time_ns()
            tasks = super().claim(n)
            state["claim_ret"] = time.time_ns()
            return tasks

        def idle(self, claim_wseq):
            go_on = super().idle(claim_wseq)
            state["woke"] = time.time_ns()
            return go_on

    runner.Session = TimedSession
    runner.Runner = TimedRunner

    def handler(task, cur):
        now = time.time_ns()
        if isinstance(task.payload, dict) and "seq" in task.payload:
            seq = task.payload["seq"]
            os.write(fd, (f"{seq} {now} {T_MAIN} {state['opened']} {os.getpid()} "
                          f"{os.environ.get('PGWAKE_WORKER_ID', '-')} {state['first']} "
                          f"{state['woke']} {state['claim_start']}\n").encode())
            os.write(side, (f"T {seq} {state['claim_start']} {state['claim_ret']} {now} "
                            f"{state['first']}\n").encode())
            state["first"] = 0
        return None

    return pgwake.run(handler)


def mode_split(out, label):
    procs, tasks = [], []
    with open(out + ".py") as f:
        for line in f:
            p = line.split()
            if p[0] == "P":
                procs.append([int(x) for x in p[2:5]])
            elif p[0] == "T" and (p[5] == "1" or not label.endswith("cold")):
                tasks.append([int(x) for x in p[2:5]])  # cold: each process's first task
    result(f"{label}_import", [p[1] - p[0] for p in procs])
    result(f"{label}_open", [p[2] - p[1] for p in procs])
    result(f"{label}_claim_call_only", [t[1] - t[0] for t in tasks])
    result(f"{label}_begin", [t[2] - t[1] for t in tasks])


def run_wait(argv, env):
    t0 = time.monotonic_ns()
    subprocess.run(argv, env=env, check=True)
    return time.monotonic_ns() - t0


def mode_spawn(n):
    env = {**os.environ, "PYTHONPATH": os.path.join(ROOT, "python")}
    for name, code in (("py_exec_pass", "pass"), ("py_exec_import_psycopg", "import psycopg"),
                       ("py_exec_import_pgwake", "import pgwake")):
        argv = ["/usr/bin/python3", "-c", code]
        for _ in range(5):
            run_wait(argv, env)
        result(name, [run_wait(argv, env) for _ in range(n)])


def mode_throughput(dsn, workers, batch, ntasks, cmd):
    import psycopg
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("DELETE FROM pgwake.tasks WHERE stage = 'tp'")
        c.execute("INSERT INTO pgwake.tasks(stage, payload) SELECT 'tp', '{}' "
                  "FROM generate_series(1, %s)", (ntasks,))
        c.execute("VACUUM ANALYZE pgwake.tasks")
        env = {k: v for k, v in os.environ.items()
               if k not in ("PGWAKE_WAKE_FD", "PGWAKE_WORKER_ID")}
        env.update(PGWAKE_DSN=dsn, PGWAKE_STAGE="tp", PGWAKE_CLAIM_BATCH=str(batch))
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        procs = [subprocess.Popen(cmd, env=env) for _ in range(workers)]
        codes = [p.wait() for p in procs]
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        done, span = c.execute(
            "SELECT count(*), extract(epoch FROM max(finished_at) - min(finished_at)) "
            "FROM pgwake.tasks WHERE stage = 'tp' AND status = 'done'").fetchone()
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    rate = (done - 1) / span if span else 0
    print(f"RESULT bench=throughput workers={workers} batch={batch} tasks={ntasks} done={done} "
          f"tasks_s={rate:.0f} cpu_us_task={cpu / max(done, 1) * 1e6:.0f} "
          f"exit={','.join(map(str, codes))}", flush=True)


def mode_noop():
    import pgwake
    return pgwake.run(lambda task, cur: None)


def load_results(path):
    """load_results reads "RESULT run=R bench=B k=v ..." lines into {bench: {run: fields}}."""
    out = {}
    with open(path) as f:
        for line in f:
            if not line.startswith("RESULT "):
                continue
            kv = dict(x.split("=", 1) for x in line.split()[1:] if "=" in x)
            key = kv["bench"]
            if kv["bench"] in ("throughput", "idle"):
                key = " ".join(f"{k}={kv[k]}" for k in ("bench", "what", "workers", "batch")
                               if k in kv)
            out.setdefault(key, {})[kv["run"]] = kv
    return out


def ms(us):
    return f"{float(us) / 1000:.2f}"


def latency_rows(res, rows, head_of):
    """latency_rows: one table row per (label, bench); a split row follows its head's run."""
    lines = ["| what | p50 ms | p90 ms | p99 ms | max ms | all runs: p50 / p99 ms | aim |",
             "|---|---:|---:|---:|---:|---|---|"]
    for label, bench, aim in rows:
        runs = res.get(bench)
        if not runs:
            continue
        head = res.get(head_of.get(bench, bench), runs)
        best = min(head, key=lambda r: float(head[r]["p99_us"]))
        if best not in runs:
            best = min(runs, key=lambda r: float(runs[r]["p99_us"]))
        f = runs[best]
        p50s = sorted(float(r["p50_us"]) for r in runs.values())
        p99s = sorted(float(r["p99_us"]) for r in runs.values())
        spread = lambda v: ms(v[0]) if len(v) == 1 else f"{ms(v[0])}-{ms(v[-1])}"
        if callable(aim):
            aim = aim(float(f["p50_us"]) / 1000, float(f["p99_us"]) / 1000)
        lines.append(f"| {label} | {ms(f['p50_us'])} | {ms(f['p90_us'])} | {ms(f['p99_us'])} | "
                     f"{ms(f['max_us'])} | {spread(p50s)} / {spread(p99s)} | {aim} |")
    return lines


def mode_report(path):
    res = load_results(path)
    warm_aim = lambda p50, p99: (f"p50 < 2 ms: {'met' if p50 < 2 else 'missed'}; "
                                 f"p99 < 5 ms: {'met' if p99 < 5 else 'missed'}")
    sub = "&nbsp;&nbsp;"
    warm = [
        ("**warm wake, Python**: COMMIT returned -> handler called in the idle `pgwake.run` worker",
         "py_warm", warm_aim),
        (f"{sub}a. COMMIT returned -> W ended the worker's wait (tasks whose W came after their commit)",
         "py_warm_commit_to_woken", ""),
        (f"{sub}b. claim call, to the handler called (same tasks)", "py_warm_claim_call", ""),
        (f"{sub}the claim call alone (every task)", "py_warm_claim_call_only", ""),
        (f"{sub}claim returned -> handler called (Python only)", "py_warm_begin", ""),
        ("warm wake, C, same run: COMMIT returned -> claim returned (`bench/wake worker`)", "c_warm", ""),
        ("**cold start, Python**: COMMIT returned -> handler called in a newly spawned worker",
         "py_cold", ""),
        (f"{sub}1. COMMIT -> register_worker transaction began (notification, daemon)",
         "py_cold_commit_to_register", ""),
        (f"{sub}2. -> first line of the script (register round trip, fork, exec, python3 start-up)",
         "py_cold_register_to_main", ""),
        (f"{sub}3. -> `import pgwake` done (psycopg and libpq loaded)", "py_cold_import", ""),
        (f"{sub}4. -> `pgwake.Session` opened (environment, wake fd, heartbeat thread started)",
         "py_cold_open", ""),
        (f"{sub}5. -> first claim returned (connect, first claim of a fresh backend)",
         "py_cold_claim_call_only", ""),
        (f"{sub}6. -> handler called", "py_cold_begin", ""),
        ("cold start, C, same run: COMMIT returned -> claim returned in a new `bench/wake worker`",
         "c_cold", ""),
        ("for scale: fork + exec + wait of `python3 -c pass`", "py_exec_pass", ""),
        ("for scale: same, `python3 -c 'import psycopg'`", "py_exec_import_psycopg", ""),
        ("for scale: same, `python3 -c 'import pgwake'`", "py_exec_import_pgwake", ""),
    ]
    heads = {b: "py_warm" for b in ("py_warm_commit_to_woken", "py_warm_claim_call",
                                    "py_warm_claim_call_only", "py_warm_begin")}
    heads.update({b: "py_cold" for b in ("py_cold_commit_to_register", "py_cold_register_to_main",
                                         "py_cold_import", "py_cold_open", "py_cold_claim_call_only",
                                         "py_cold_begin")})
    print("\n".join(latency_rows(res, warm, heads)))
    tp = sorted(k for k in res if k.startswith("bench=throughput"))
    if tp:
        print("\nClaim+complete throughput, no-op handler, drain mode (self-registered workers, "
              "tasks prefilled, VACUUM ANALYZE before each run):\n")
        print("| worker | processes | PGWAKE_CLAIM_BATCH | tasks | tasks/s, each run | "
              "worker CPU us/task |")
        print("|---|---:|---:|---:|---|---:|")
        for k in tp:
            runs = res[k]
            one = next(iter(runs.values()))
            rates = ", ".join(runs[r]["tasks_s"] for r in sorted(runs))
            cpu = min(int(r["cpu_us_task"]) for r in runs.values())
            print(f"| {one.get('what', '?')} | {one['workers']} | {one['batch']} | {one['tasks']} | "
                  f"{rates} | {cpu} |")
    idle = sorted(k for k in res if k.startswith("bench=idle"))
    if idle:
        print("\nAn idle worker (min_workers = 1, the default heartbeat_interval 30s), left alone "
              "after a 3 s settling time:\n")
        print("| worker | run | seconds | CPU ms | wake-ups (context switches) | VmRSS MiB | "
              "of which anonymous MiB | threads | queries by the worker |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for k in idle:
            for r, f in sorted(res[k].items()):
                print(f"| {f['what']} | {r} | {f['secs']} | {int(f['cpu_ns']) / 1e6:.2f} | "
                      f"{f['ctx']} | {int(f['rss_kb']) / 1024:.1f} | {int(f['anon_kb']) / 1024:.1f} | "
                      f"{f['threads']} | {f['queries']} |")


def main(argv):
    mode = argv[1] if len(argv) > 1 else ""
    if mode == "worker":
        return mode_worker(argv[2])
    if mode == "split":
        return mode_split(argv[2], argv[3])
    if mode == "spawn":
        return mode_spawn(int(argv[2]))
    if mode == "throughput":
        return mode_throughput(argv[2], int(argv[3]), int(argv[4]), int(argv[5]), argv[6:])
    if mode == "noop":
        return mode_noop()
    if mode == "report":
        return mode_report(argv[2])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
