"""session_loop: the same loop under pgwake (SPEC section 10). Three changes:
the lease owner is the pgwake worker id (PGWAKE_WORKER_ID, through the
Session), the poll sleep is wait_for_work() (the daemon wakes the worker the
moment work appears, and stops it when idle), and each claim first heartbeats
in the same transaction, so a worker declared dead claims nothing (its
release_sql has run: anything it took after that would never be released)."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import pgwake  # noqa: E402
import leadgen  # noqa: E402

# A stage whose completions make work for another stage that watch_table
# cannot see (an UPDATE, not an INSERT) wakes it itself.
WAKES = {"company_research": "contact_discovery"}


def main(stage: str) -> int:
    with pgwake.Session(stage) as s:
        conn = s.connect()
        while not s.should_stop():
            with conn.transaction():
                # -1: declared dead (its heartbeat row lock orders this claim
                # before or after the release, never beside it).
                if conn.execute("SELECT pgwake.heartbeat(%s)", (s.worker_id,)).fetchone()[0] < 0:
                    return 1
                item = leadgen.claim(conn, stage, s.worker_id)
            if item is None:
                if not s.wait_for_work():
                    return 0
                continue
            if leadgen.WORK[stage](conn, s.worker_id, item) and stage in WAKES:
                conn.execute("SELECT pg_notify('pgwake_wake', %s)", (WAKES[stage],))
    return 0
