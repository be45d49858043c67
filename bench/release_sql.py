"""release_sql.py: the measuring side of bench/release_sql.sh. LISTENs on the
bench table's own channels (bench_leased, bench_released: a trigger on its
status column), SIGKILLs the worker holding the row as soon as it is leased,
and times the kill to the release's commit (the bench_released notification,
sent by the UPDATE that release_sql ran in the daemon's release_worker).
Prints one sample in ms per line, then a RESULT line."""

import os
import select
import signal
import sys
import time

import psycopg


def wait_notify(conn, channel, timeout):
    """wait_notify returns (payload, monotonic time) of the next notification on channel."""
    deadline = time.monotonic() + timeout
    while True:
        n = conn.pgconn.notifies()
        while n is not None:
            if n.relname.decode() == channel:
                return n.extra.decode(), time.monotonic()
            n = conn.pgconn.notifies()
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no {channel} within {timeout} s")
        select.select([conn.fileno()], [], [], left)
        conn.pgconn.consume_input()


def main():
    dsn, kills = sys.argv[1], int(sys.argv[2])
    listen = psycopg.connect(dsn, autocommit=True)
    listen.execute("LISTEN bench_leased")
    listen.execute("LISTEN bench_released")
    ask = psycopg.connect(dsn, autocommit=True)
    ask.execute("UPDATE bench_lease SET status = 'pending' WHERE id = 1")
    ask.execute("NOTIFY pgwake_wake, 'holder'")  # an UPDATE: no watch_table wake
    samples = []
    for _ in range(kills):
        wid, _ = wait_notify(listen, "bench_leased", 30)
        pid = ask.execute("SELECT pid FROM pgwake.workers WHERE id = %s", (wid,)).fetchone()[0]
        while pid is None:  # the daemon records the pid right after the fork
            time.sleep(0.001)
            pid = ask.execute("SELECT pid FROM pgwake.workers WHERE id = %s", (wid,)).fetchone()[0]
        t0 = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        released, t1 = wait_notify(listen, "bench_released", 30)
        if released != wid:
            raise SystemExit(f"released {released}, expected {wid}")
        samples.append((t1 - t0) * 1000)
        print(f"{samples[-1]:.2f}", flush=True)
    s = sorted(samples)
    pick = lambda p: s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]
    print(f"RESULT kills={len(s)} p50_ms={pick(50):.1f} p90_ms={pick(90):.1f} p99_ms={pick(99):.1f}"
          f" max_ms={s[-1]:.1f}")


if __name__ == "__main__":
    main()
