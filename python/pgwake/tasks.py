"""Tasks of pgwake.tasks as the handler sees them, pgwake.Fail, and
pgwake.enqueue for follow-ups in the handler's own transaction."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, List, Optional, Union

import psycopg
from psycopg.types.json import Jsonb


class Fail(Exception):
    """Fail, raised by a handler, fails its task for good: it goes ``dead`` with
    the message as ``last_error`` (any other exception is retried with backoff)."""

    def __init__(self, msg: str) -> None:
        super().__init__(msg)
        self.msg = msg


@dataclass(frozen=True)
class Task:
    """One claimed task. ``attempts > 1`` means a re-execution (an earlier worker
    died or failed it); ``lease_token`` fences its complete and fail."""

    id: int
    run_id: Optional[int]
    stage: str
    payload: Any
    attempts: int
    lease_token: int


class TaskCursor(psycopg.Cursor):  # type: ignore[type-arg]
    """The cursor a handler gets: a psycopg cursor in the task's transaction that
    remembers its task, so enqueue() puts follow-ups in the task's run."""

    pgwake_task: Optional[Task] = None


def from_row(stage: str, row: Any) -> Task:
    """from_row builds a Task from (id, run_id, payload, attempts, lease_token)."""
    return Task(id=int(row[0]), run_id=None if row[1] is None else int(row[1]), stage=stage,
                payload=row[2], attempts=int(row[3]), lease_token=int(row[4]))


NotBefore = Union[dt.datetime, dt.timedelta, int, float, None]


def enqueue(cur: psycopg.Cursor, stage: str, payload: Any = None, *,  # type: ignore[type-arg]
            run_id: Optional[int] = None, priority: int = 0, not_before: NotBefore = None,
            max_attempts: Optional[int] = None) -> int:
    """enqueue adds a task to ``stage`` with ``cur`` and returns its id.

    Called with the cursor a ``pgwake.run`` handler got, the task commits with
    the handler's task or not at all, and ``run_id`` defaults to that task's
    run (so the run is never seen done between two stages). ``payload`` is any
    JSON-serialisable value (``None``: ``{}``). ``not_before`` is a datetime,
    or a delay (timedelta or seconds) counted in database time; ``None``: now.
    ``max_attempts`` ``None`` keeps the database's default (5).
    """
    if run_id is None:
        task = getattr(cur, "pgwake_task", None)
        run_id = task.run_id if task is not None else None
    args: List[str] = ["stage => %s", "payload => %s", "run_id => %s", "priority => %s"]
    params: List[Any] = [stage, Jsonb({} if payload is None else payload), run_id, priority]
    if isinstance(not_before, dt.datetime):
        args.append("not_before => %s")
        params.append(not_before)
    elif isinstance(not_before, dt.timedelta):
        args.append("not_before => now() + %s")
        params.append(not_before)
    elif not_before is not None:
        args.append("not_before => now() + %s * interval '1 second'")
        params.append(float(not_before))
    if max_attempts is not None:
        args.append("max_attempts => %s")
        params.append(max_attempts)
    row = cur.execute(f"SELECT pgwake.enqueue({', '.join(args)})", params).fetchone()
    assert row is not None
    return int(row[0])
