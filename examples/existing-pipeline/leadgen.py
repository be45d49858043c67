"""leadgen: the pipeline's own code, the same before and after pgwake.

Each stage leases one item in its table (worker_id, worker_lease_until; FOR
UPDATE SKIP LOCKED), does its work outside any transaction (the slow API calls
of the real pipeline: a sleep here, LEADGEN_WORK_S seconds), then completes it
in one transaction that checks the lease is still its own. A worker whose
lease was taken back (it was thought dead) completes nothing: its rows roll
back, and the item is done once, by whoever holds the lease.
"""

from __future__ import annotations

import os
import time
from typing import Callable, Dict, Optional, Tuple

import psycopg
from psycopg.types.json import Jsonb

WORK_S = float(os.environ.get("LEADGEN_WORK_S", "2"))
LEASE = "10 minutes"  # what the old heartbeat monitor waited for before releasing

# stage: (table, status it takes, status while leased)
STAGES: Dict[str, Tuple[str, str, str]] = {
    "company_discovery": ("pm_pipeline.runs", "pending", "discovering"),
    "company_research": ("pm_pipeline.company_candidates", "pending", "researching"),
    "contact_discovery": ("pm_pipeline.company_candidates", "researched", "finding_contacts"),
}


def connect(dsn: Optional[str] = None) -> psycopg.Connection:
    """connect opens an autocommit connection (DATABASE_URL unless dsn is given)."""
    return psycopg.connect(dsn if dsn is not None else os.environ.get("DATABASE_URL", ""),
                           autocommit=True)


def claim(conn: psycopg.Connection, stage: str, worker_id: str) -> Optional[int]:
    """claim leases the oldest ready item of stage to worker_id; None when there is none."""
    table, ready, busy = STAGES[stage]
    row = conn.execute(
        f"UPDATE {table} SET status = %s, worker_id = %s, attempts = attempts + 1,"
        f"       worker_lease_until = now() + interval '{LEASE}'"
        f" WHERE id = (SELECT id FROM {table} WHERE status = %s ORDER BY id LIMIT 1"
        f"             FOR UPDATE SKIP LOCKED)"
        f" RETURNING id", (busy, worker_id, ready)).fetchone()
    return row[0] if row else None


def _finish(conn: psycopg.Connection, stage: str, item: int, worker_id: str, sets: str,
            args: tuple) -> bool:
    """_finish moves a leased item on, only while the lease is still worker_id's."""
    table, _, busy = STAGES[stage]
    cur = conn.execute(
        f"UPDATE {table} SET {sets}, worker_id = NULL, worker_lease_until = NULL"
        f" WHERE id = %s AND worker_id = %s AND status = %s", args + (item, worker_id, busy))
    return cur.rowcount == 1


def discover(conn: psycopg.Connection, worker_id: str, run_id: int) -> bool:
    """discover finds a run's candidate companies."""
    industry, n = conn.execute("SELECT industry, companies FROM pm_pipeline.runs WHERE id = %s",
                               (run_id,)).fetchone()
    time.sleep(WORK_S)
    with conn.transaction():
        if not _finish(conn, "company_discovery", run_id, worker_id, "status = 'discovered'", ()):
            raise psycopg.Rollback()
        conn.execute("INSERT INTO pm_pipeline.company_candidates (run_id, name)"
                     " SELECT %s, %s || ' company ' || g FROM generate_series(1, %s) g",
                     (run_id, industry, n))
        return True
    return False


def research(conn: psycopg.Connection, worker_id: str, cand: int) -> bool:
    """research writes what it learnt of one candidate."""
    time.sleep(WORK_S)
    with conn.transaction():
        if _finish(conn, "company_research", cand, worker_id,
                   "status = 'researched', researched_by = %s, research = %s",
                   (worker_id, Jsonb({"employees": 40 + cand % 7, "fit": "good"}))):
            return True
        raise psycopg.Rollback()
    return False


def find_contacts(conn: psycopg.Connection, worker_id: str, cand: int) -> bool:
    """find_contacts records two people to contact at one candidate."""
    time.sleep(WORK_S)
    with conn.transaction():
        if not _finish(conn, "contact_discovery", cand, worker_id,
                       "status = 'done', contacts_by = %s", (worker_id,)):
            raise psycopg.Rollback()
        for role in ("ceo", "cto"):
            conn.execute("INSERT INTO pm_pipeline.contacts (candidate_id, name, email)"
                         " VALUES (%s, %s, %s)", (cand, role.upper(), f"{role}@company-{cand}.example"))
        return True
    return False


WORK: Dict[str, Callable[[psycopg.Connection, str, int], bool]] = {
    "company_discovery": discover,
    "company_research": research,
    "contact_discovery": find_contacts,
}
