"""pgwake.run: the worker loop (claim, handler and complete in one transaction,
or fail; the wake fd between tasks; idle `I` and wait) over a Session."""

from __future__ import annotations

import enum
import json
import logging
import signal
import threading
import traceback
from typing import Any, Callable, List, Optional, Set, Tuple

import psycopg

from psycopg.pq import TransactionStatus

from .conn import Reconnector, TaskConnection, is_lost, is_transient, one_line
from .session import Session
from .tasks import Fail, Task, TaskCursor, from_row

log = logging.getLogger("pgwake")

Handler = Callable[[Task, TaskCursor], Any]

CLAIM_SQL = ("SELECT id, run_id, payload, attempts, lease_token"
             " FROM pgwake.claim(%s, %s, %s * interval '1 second', %s)")
# Tasks leased to us that this process does not hold: what a claim that committed
# after its connection broke handed us (a role that cannot read pgwake.tasks skips it).
ADOPT_SQL = ("SELECT id, run_id, payload, attempts, lease_token FROM pgwake.tasks"
             " WHERE lease_owner = %s AND stage = %s AND status = 'leased'"
             " AND id <> ALL (%s::bigint[]) ORDER BY id LIMIT %s")
# lease_outcome answers only the token's holder, so a pgwake_worker role may ask too.
STATE_SQL = "SELECT status FROM pgwake.lease_outcome(%s, %s)"
TRANSIENT_TRIES = 5
LOST_TRIES = 3  # handler runs cut off by a lost connection before the task is failed


class Outcome(enum.Enum):
    """What became of one task."""

    DONE = "done"        # completed, with everything the handler wrote
    FAILED = "failed"    # failed (retry or dead), nothing the handler wrote kept
    LOST = "lost"        # the lease was no longer ours: nothing changed
    STOPPED = "stopped"  # told to stop while the database was away: left leased
    FENCED = "fenced"    # this worker was declared dead: rolled back, stop at once


class _Lost(Exception):
    """The main connection broke during a step that may be repeated."""


class Runner:
    """Runner is one pgwake.run: a Session plus the main connection."""

    def __init__(self, handler: Handler, session: Session) -> None:
        self.handler = handler
        self.s = session
        self.main = Reconnector(session.dsn, "main", self._sleep, TaskConnection)
        self.held: Set[int] = set()     # ids of tasks we hold (adoption skips them)
        self.maybe_claimed = False      # a claim was cut off: adopt before claiming anew
        self.in_task = threading.Event()

    # ---- waiting for the database

    def _sleep(self, seconds: float) -> bool:
        """_sleep is the main connection's backoff wait; a stop (not a `W`) ends it."""
        self.s.wake.poll()
        if self.s._stopping():
            return False
        self.s.wake.wait(seconds)
        return not self.s._stopping()

    # ---- claiming

    def claim(self, n: int) -> Optional[List[Task]]:
        """claim takes up to n tasks; None when a stop ended the wait for the database."""
        transient = 0
        while True:
            conn = self.main.get()
            if conn is None:
                return None
            try:
                if self.maybe_claimed:
                    rows = self._adopt(conn, n)
                    self.maybe_claimed = False
                    if rows:
                        log.warning("adopted %d task(s) from a claim cut off by a lost connection",
                                    len(rows))
                        return self._take(rows)
                rows = conn.execute(CLAIM_SQL, (self.s.stage, self.s.worker_id, self.s.lease_s,
                                                n)).fetchall()
                return self._take(rows)
            except psycopg.Error as exc:
                if is_lost(conn, exc):
                    self.main.lost(exc)
                    self.maybe_claimed = True
                    continue
                if is_transient(exc) and transient < TRANSIENT_TRIES:
                    transient += 1
                    continue
                raise

    def _adopt(self, conn: psycopg.Connection, n: int) -> List[Any]:
        try:
            return conn.execute(ADOPT_SQL, (self.s.worker_id, self.s.stage, list(self.held),
                                            n)).fetchall()
        except psycopg.Error as exc:
            if is_lost(conn, exc):
                raise
            log.warning("unable to look for tasks claimed before the connection broke: %s "
                        "(any such lease ends when this worker exits)", one_line(exc))
            return []

    def _take(self, rows: List[Any]) -> List[Task]:
        tasks = [from_row(self.s.stage, r) for r in rows]
        self.held.update(t.id for t in tasks)
        return tasks

    # ---- one task

    def run_task(self, task: Task) -> Outcome:
        """run_task hands task to the handler in a transaction and completes or fails it."""
        error: Optional[str] = None
        retry = True
        for _ in range(LOST_TRIES):
            conn = self.main.get()
            if conn is None:
                return Outcome.STOPPED
            try:
                outcome, error, retry = self._attempt(conn, task)
            except _Lost:
                state = self._state_after_loss(task)
                if state == "done":
                    log.info("task %d: the completion had committed before the connection broke",
                             task.id)
                    return self._forget(task, Outcome.DONE)
                if state != "leased":
                    return self._forget(task, Outcome.STOPPED if state is None else Outcome.LOST)
                log.warning("task %d: the connection broke during the task; running it again",
                            task.id)
                continue
            if outcome is not None:
                return self._forget(task, outcome)
            break
        else:
            error, retry = "the database connection broke during every try of the task", True
        assert error is not None
        return self._forget(task, self.fail(task, error, retry))

    def _forget(self, task: Task, outcome: Outcome) -> Outcome:
        if outcome is not Outcome.STOPPED:
            self.held.discard(task.id)
        return outcome

    def _attempt(self, conn: TaskConnection,
                 task: Task) -> Tuple[Optional[Outcome], Optional[str], bool]:
        """One transaction: the handler, then pgwake.complete; commit only when it said true.

        The transaction begins with the handler's first statement (psycopg's
        implicit BEGIN), so a handler that writes nothing costs no BEGIN and no
        COMMIT: its completion is one autocommit statement, as in the C library.
        Returns (outcome, None, _) when finished, or (None, error, retry) when the
        task must be failed (the transaction was rolled back). Raises _Lost.
        """
        cur = TaskCursor(conn)
        cur.pgwake_task = task
        self.in_task.set()
        conn.autocommit = False
        conn.pgwake_in_task = True
        try:
            try:
                result = self.handler(task, cur)
            except Fail as exc:
                raise _Failed(exc.msg, False) from exc
            except psycopg.Error as exc:
                if is_lost(conn, exc):
                    raise
                raise _Failed(_describe(exc), True) from exc
            except Exception as exc:  # the handler's failure, whatever it is
                raise _Failed(_describe(exc), True) from exc
            finally:
                conn.pgwake_in_task = False
            try:
                result_json = None if result is None else json.dumps(result, allow_nan=False)
            except (TypeError, ValueError) as exc:
                raise _Failed(f"the handler's result is not JSON: {_describe(exc)}", True) from exc
            if self.s.fenced:
                raise _Fenced()
            status = conn.info.transaction_status
            if status == TransactionStatus.INERROR:
                raise _Failed("the task's transaction was aborted by an SQL error the handler "
                              "caught (rolled back)", True)
            if status == TransactionStatus.IDLE:
                conn.autocommit = True  # the handler wrote nothing: complete in one statement
            row = conn.execute("SELECT pgwake.complete(%s, %s, %s::jsonb)",
                               (task.id, task.lease_token, result_json)).fetchone()
            if not (row and row[0]):
                raise _Refused()
            if status != TransactionStatus.IDLE:
                conn.commit()
            return Outcome.DONE, None, True
        except _Failed as f:
            if self.s.fenced:
                log.warning("task %d: worker fenced during the task; rolled back", task.id)
                return Outcome.FENCED, None, True
            if isinstance(f.__cause__, Fail):
                log.info("task %d failed for good: %s", task.id, f.error)
            else:
                log.warning("task %d failed (retried with backoff): %s", task.id, f.error,
                            exc_info=f.__cause__)
            return None, f.error, f.retry
        except _Fenced:
            log.warning("task %d: worker fenced during the task; rolled back", task.id)
            return Outcome.FENCED, None, True
        except _Refused:
            if self.s.fenced:
                return Outcome.FENCED, None, True
            log.warning("task %d: the lease (token %d) is no longer ours; rolled back, nothing "
                        "changed", task.id, task.lease_token)
            return Outcome.LOST, None, True
        except psycopg.Error as exc:
            if is_lost(conn, exc):
                self.main.lost(exc)
                raise _Lost() from exc
            if self.s.fenced:
                return Outcome.FENCED, None, True  # e.g. our query cancelled by the fencing
            return None, f"unable to complete the task: {one_line(exc)}", True
        finally:
            self.in_task.clear()
            cur.close()
            self._end_transaction(conn)

    def _end_transaction(self, conn: TaskConnection) -> None:
        """_end_transaction rolls back whatever a task left open and restores autocommit."""
        if conn.closed:
            return
        try:
            if conn.info.transaction_status != TransactionStatus.IDLE:
                conn.rollback()
            conn.autocommit = True
        except psycopg.Error:
            self.main.close()  # in an unknown state: the next task starts on a new connection

    def _state_after_loss(self, task: Task) -> Optional[str]:
        """The task's status under our token after a loss; None when a stop ended the wait."""
        while True:
            conn = self.main.get()
            if conn is None:
                return None
            try:
                row = conn.execute(STATE_SQL, (task.id, task.lease_token)).fetchone()
                return row[0] if row else "taken"
            except psycopg.Error as exc:
                if is_lost(conn, exc):
                    self.main.lost(exc)
                    continue
                return "leased"  # an older schema without lease_outcome: assume it is still ours

    def fail(self, task: Task, error: str, retry: bool) -> Outcome:
        """fail runs pgwake.fail (retry: pending with backoff, or dead); repeats are fenced."""
        transient = 0
        repeated = False
        while True:
            conn = self.main.get()
            if conn is None:
                return Outcome.STOPPED
            try:
                row = conn.execute("SELECT pgwake.fail(%s, %s, %s, %s)",
                                   (task.id, task.lease_token, error, retry)).fetchone()
            except psycopg.Error as exc:
                if is_lost(conn, exc):
                    self.main.lost(exc)
                    repeated = True
                    continue
                if is_transient(exc) and transient < TRANSIENT_TRIES:
                    transient += 1
                    continue
                raise
            if row and row[0]:
                return Outcome.FAILED
            if repeated:
                return Outcome.FAILED  # the first try committed; the repeat was fenced
            log.warning("task %d: the lease (token %d) is no longer ours; not failed",
                        task.id, task.lease_token)
            return Outcome.LOST

    # ---- the loop

    def idle(self, claim_wseq: int) -> bool:
        """idle follows a claim that found nothing: True to claim again, False to stop."""
        s = self.s
        if s.drain:
            return False
        s.wake.poll()
        if s._stopping():
            return False
        if s.wake.wseq != claim_wseq:
            return True  # a W came while that claim ran: its work may be newer than the claim
        s.wake.send_idle()
        while not s._stopping():
            if s.wake.wseq != claim_wseq:
                return True
            s.wake.wait(None)
        return False

    def loop(self) -> int:
        """loop claims and runs tasks until told to stop; returns the exit code."""
        s = self.s
        while True:
            if s.fenced:
                return 1
            if s.should_stop():
                return 0
            claim_wseq = s.wake.wseq  # a W pending now predates this claim (poll() read it)
            tasks = self.claim(s.claim_batch)
            if tasks is None:
                continue  # the loop head says why
            if not tasks:
                if not self.idle(claim_wseq):
                    return 1 if s.fenced else 0
                continue
            for i, task in enumerate(tasks):
                # `S` lets a claimed batch finish (the daemon waits stop_timeout for
                # it); SIGTERM and request_stop() end it after the current task (the
                # first one claimed counts as begun), and fencing at once. Tasks
                # left over are released when the worker ends.
                if s.fenced:
                    return 1
                if i > 0 and s._stop.is_set():
                    break
                outcome = self.run_task(task)
                log.debug("task %d: %s", task.id, outcome.value)
                if outcome is Outcome.FENCED:
                    return 1
                if outcome is Outcome.STOPPED:
                    break  # told to stop while the database was away
                s.wake.poll()

    def cancel_current(self) -> None:
        """cancel_current cancels the main connection's query while a task runs (fencing)."""
        conn = self.main.conn
        if conn is not None and self.in_task.is_set():
            try:
                conn.cancel()
            except psycopg.Error:
                pass

    def close(self) -> None:
        self.main.close()


class _Failed(Exception):
    def __init__(self, error: str, retry: bool) -> None:
        super().__init__(error)
        self.error = error
        self.retry = retry


class _Fenced(Exception):
    pass


class _Refused(Exception):
    pass


def _describe(exc: BaseException) -> str:
    text = one_line(exc) if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def run(handler: Handler, *, stage: Optional[str] = None, dsn: Optional[str] = None) -> int:
    """run is a whole worker: claim tasks of the stage and call ``handler(task, cur)``.

    The handler runs inside the transaction that will also complete the task:
    what it writes with ``cur`` (its own rows, follow-ups through
    ``pgwake.enqueue(cur, ...)``) commits with the completion, or not at all.
    Its return value (JSON-serialisable, or None) becomes the task's result.
    An exception fails the task with retry (its text becomes ``last_error``);
    ``pgwake.Fail(msg)`` fails it for good. Between tasks the wake fd is read,
    so a busy worker still sees `S`; with nothing to claim it tells the daemon
    it is idle and sleeps until `W`. SIGTERM (in the main thread) stops it
    after the current task; `S` after the current batch (``PGWAKE_CLAIM_BATCH``
    tasks are claimed per round trip, each completed with its own token).
    Lost connections are reconnected with backoff; a handler cut off by one
    runs again on the same lease.

    Returns 0 when told to stop (`S`, end of file, drain done, SIGTERM) and 1
    when fenced (declared dead) or on a fatal error: ``sys.exit(pgwake.run(h))``.
    """
    try:
        session = Session(stage, dsn)
    except (ValueError, RuntimeError) as exc:
        log.error("%s", exc)
        return 1
    runner = Runner(handler, session)
    session._on_fenced = runner.cancel_current
    old = _install_sigterm(session)
    try:
        return runner.loop()
    except psycopg.Error as exc:
        log.error("worker %s: %s (exiting)", session.worker_id, one_line(exc))
        log.debug("%s", traceback.format_exc())
        return 1
    finally:
        if old is not None:
            signal.signal(signal.SIGTERM, old)
        runner.close()
        session.close()


def _install_sigterm(session: Session) -> Any:
    """A graceful SIGTERM: finish the current task, then return 0 (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def handle_sigterm(signum: int, frame: Any) -> None:
        log.info("SIGTERM: stopping after the current task")
        session.request_stop()

    return signal.signal(signal.SIGTERM, handle_sigterm)
