"""Connections for workers: keepalives and application_name, reconnect with a
capped backoff, and telling "the connection is gone" from "the SQL failed"."""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Optional, Type

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import TransactionStatus

log = logging.getLogger("pgwake")

BACKOFF_FIRST_S = 0.1
BACKOFF_MAX_S = 5.0
LOG_EVERY = 10  # after the first failure, log every 10th attempt (about 50 s)

# Our keepalives come first so that the DSN may override them; application_name
# is forced because operators look for "pgwake-worker" in pg_stat_activity.
_DEFAULTS = {
    "connect_timeout": "10",
    "keepalives": "1",
    "keepalives_idle": "30",
    "keepalives_interval": "10",
    "keepalives_count": "3",
}

# SQLSTATEs of a server going away: admin, crash and "cannot connect now" shutdowns.
_SHUTDOWN = {"57P01", "57P02", "57P03"}
# Rolled back by a deadlock or a serialization failure: safe to repeat.
_TRANSIENT = {"40P01", "40001"}


class TaskConnection(psycopg.Connection):  # type: ignore[type-arg]
    """The connection a pgwake.run handler's cursor belongs to.

    While the handler runs, the task's transaction must end with the task:
    commit(), rollback() and autocommit are refused (raise an exception to
    fail the task), and a ``transaction()`` block opened before any statement becomes a
    savepoint in the task's transaction instead of a transaction of its own.
    """

    pgwake_in_task = False  # set by pgwake.run around the handler

    def commit(self) -> None:
        if self.pgwake_in_task:
            raise psycopg.ProgrammingError("commit() inside a pgwake task: the task's transaction "
                                           "commits with pgwake.complete when the handler returns")
        super().commit()

    def rollback(self) -> None:
        if self.pgwake_in_task:
            raise psycopg.ProgrammingError("rollback() inside a pgwake task: raise an exception "
                                           "to fail the task instead")
        super().rollback()

    @property
    def autocommit(self) -> bool:
        return bool(psycopg.Connection.autocommit.fget(self))  # type: ignore[attr-defined]

    @autocommit.setter
    def autocommit(self, value: bool) -> None:
        if self.pgwake_in_task:
            raise psycopg.ProgrammingError("autocommit inside a pgwake task: what the handler "
                                           "writes commits with the task, or not at all")
        psycopg.Connection.autocommit.fset(self, value)  # type: ignore[attr-defined]

    def transaction(self, *args: Any, **kwargs: Any) -> Any:
        if self.pgwake_in_task and self.info.transaction_status == TransactionStatus.IDLE:
            self.execute("SELECT")  # psycopg's implicit BEGIN opens the task's transaction
        return super().transaction(*args, **kwargs)


def connect(dsn: str, cls: Type[psycopg.Connection] = psycopg.Connection) -> psycopg.Connection:
    """connect makes one attempt at an autocommit connection (raises psycopg.Error).

    Server-side prepared statements are off, as in the C library (unnamed
    statements only): psycopg makes them after 5 runs of a query, and a
    transaction pool (PgBouncer 1.18) hands them to other clients.
    """
    params = dict(_DEFAULTS)
    if dsn:
        try:
            params.update(conninfo_to_dict(dsn))
        except psycopg.ProgrammingError:
            # libpq's message echoes the DSN's pieces, password included
            raise ValueError("the DSN (dsn= or PGWAKE_DSN) is not a valid connection string "
                             "(key=value pairs or a postgresql:// URI)") from None
    params["application_name"] = "pgwake-worker"
    return cls.connect(autocommit=True, prepare_threshold=None, **params)


def is_lost(conn: Optional[psycopg.Connection], exc: BaseException) -> bool:
    """is_lost says whether exc means the connection is gone (reconnect and retry).

    Every error the server sends has a SQLSTATE; libpq's own "server closed the
    connection unexpectedly" has none and may come while the connection still
    looks open, so a psycopg error without one counts as lost too.
    """
    if not isinstance(exc, psycopg.Error):
        return False
    if conn is None or conn.closed or conn.broken:
        return True
    state = exc.sqlstate
    if state is None:
        return isinstance(exc, psycopg.OperationalError)
    return state.startswith("08") or state in _SHUTDOWN


def is_transient(exc: BaseException) -> bool:
    """is_transient is true for a statement rolled back by a deadlock or a serialization failure."""
    return isinstance(exc, psycopg.Error) and exc.sqlstate in _TRANSIENT


def one_line(exc: BaseException) -> str:
    """one_line is an error message on one line (libpq's span several)."""
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


class Reconnector:
    """Reconnector keeps one connection, reconnecting with backoff when it is lost.

    sleep(seconds) waits between attempts and returns False to give up (a stop
    was asked): the owner decides what may end a wait for the database.
    """

    def __init__(self, dsn: str, name: str, sleep: Callable[[float], bool],
                 cls: Type[psycopg.Connection] = psycopg.Connection) -> None:
        self.dsn = dsn
        self._cls = cls
        self.name = name
        self._sleep = sleep
        self.conn: Optional[psycopg.Connection] = None
        self.error = ""

    def get(self, max_wait: Optional[float] = None) -> Optional[psycopg.Connection]:
        """get returns the connection, connecting as long as needed (max_wait s at most).

        None when the wait was given up: sleep() said stop, or max_wait passed.
        """
        if self.conn is not None and not self.conn.closed:
            return self.conn
        start = time.monotonic()
        backoff = BACKOFF_FIRST_S
        failures = 0
        while True:
            try:
                self.conn = connect(self.dsn, self._cls)
                if failures:
                    log.warning("%s connection: reconnected after %d failed attempt(s)",
                                self.name, failures)
                return self.conn
            except psycopg.Error as exc:
                self.error = one_line(exc)
            failures += 1
            last = max_wait is not None and time.monotonic() - start + backoff > max_wait
            if failures == 1 or failures % LOG_EVERY == 0 or last:
                log.warning("unable to connect (%s connection): %s (%s)", self.name, self.error,
                            "not waiting longer" if last else "retrying with backoff")
            if last or not self._sleep(backoff):
                return None
            backoff = min(backoff * 2, BACKOFF_MAX_S)

    def lost(self, exc: BaseException) -> None:
        """lost drops the connection after exc said it is gone."""
        self.error = one_line(exc)
        log.warning("%s connection lost: %s (reconnecting)", self.name, self.error)
        self.close()

    def close(self) -> None:
        """close closes the connection, if any."""
        if self.conn is not None:
            try:
                self.conn.close()
            except psycopg.Error:
                pass
        self.conn = None
