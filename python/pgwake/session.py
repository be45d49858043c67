"""pgwake.Session: a worker's presence (registration, heartbeat thread, wake
fd) without the task loop, for workers whose work lives in their own tables."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from types import TracebackType
from typing import Callable, Optional, Type

import psycopg

from . import config
from .conn import Reconnector, connect, one_line
from .heartbeat import Heartbeat
from .wake import WakeFd

log = logging.getLogger("pgwake")

CLOSE_WAIT_S = 5.0  # how long close() tries to reach the database to end a registration
MIN_HEARTBEAT_TIMEOUT_S = 90.0


class Session:
    """Session makes this process a live pgwake worker of one stage.

    ``worker_id`` comes from ``PGWAKE_WORKER_ID`` (the daemon registered the
    worker and spawned it) or from ``pgwake.register_worker`` (a worker started
    any other way; ``close()`` then ends the registration with
    ``pgwake.worker_exited``). A heartbeat thread on a connection of its own
    runs from construction to ``close()``, idle or busy, reconnecting while the
    database is away. Use it as a context manager::

        with pgwake.Session() as s:
            while True:
                if not poll_my_table(lease_owner=s.worker_id) and not s.wait_for_work():
                    break

    Every method may be called from the thread that created the session;
    ``request_stop()`` and ``fenced`` from any thread or a signal handler.
    """

    def __init__(self, stage: Optional[str] = None, dsn: Optional[str] = None) -> None:
        self._cfg = config.load(stage, dsn)
        self._stop = threading.Event()
        self._closed = False
        self._seen_wseq = 0      # wake.wseq when wait_for_work last returned
        self._idle_sent = False  # `I` sent and no `W` since: the daemon counts us idle
        self.wake = WakeFd(self._cfg.wake_fd)
        try:
            self.worker_id: str = self._cfg.worker_id or self._register()
        except BaseException:
            self.wake.close()
            raise
        self._on_fenced: Optional[Callable[[], None]] = None  # pgwake.run cancels its query
        self._hb = Heartbeat(self._cfg.dsn, self.worker_id, self._cfg.heartbeat_s, self._fenced_cb)
        self._hb.start()
        log.info("worker %s of stage %s started (%s, lease %g s, heartbeat every %g s)",
                 self.worker_id, self.stage, "drain mode" if self.drain else "wake fd",
                 self.lease_s, self._cfg.heartbeat_s)

    # ---- what the worker was told

    @property
    def stage(self) -> str:
        """The stage this worker serves."""
        return self._cfg.stage

    @property
    def dsn(self) -> str:
        """The connection string workers use ("" for libpq's defaults)."""
        return self._cfg.dsn

    @property
    def spawned(self) -> bool:
        """True when the daemon spawned this worker (it registers and ends it)."""
        return self._cfg.spawned

    @property
    def drain(self) -> bool:
        """True without a wake fd: work until nothing is left, then end."""
        return self.wake.drain

    @property
    def lease_s(self) -> float:
        """The lease to ask for, in seconds (``PGWAKE_LEASE_SECONDS``, default 300)."""
        return self._cfg.lease_s

    @property
    def claim_batch(self) -> int:
        """How many tasks to claim per round trip (``PGWAKE_CLAIM_BATCH``, default 1)."""
        return self._cfg.claim_batch

    @property
    def fenced(self) -> bool:
        """True once a heartbeat said this worker was declared dead: stop at once."""
        return self._hb.fenced.is_set()

    # ---- the wake fd

    def should_stop(self) -> bool:
        """should_stop looks at the wake fd without blocking: True after `S`, end of file,
        request_stop() or fencing (finish the current piece of work, then end)."""
        self.wake.poll()
        return self._stopping()

    def _stopping(self) -> bool:
        return self.wake.stop or self.wake.eof or self._stop.is_set() or self.fenced

    def wait_for_work(self, timeout: Optional[float] = None) -> bool:
        """wait_for_work tells the daemon this worker is idle and waits.

        True when `W` arrived (work may be available) or after ``timeout``
        seconds (look again anyway); False on `S`, end of file, request_stop()
        or fencing, and at once in drain mode. A `W` read since the last call
        returned counts at once: it may announce work committed after your
        last look.
        """
        if self.drain:
            return False
        self.wake.poll()
        if self._stopping():
            return False
        if self.wake.wseq != self._seen_wseq:
            return self._woken()
        # An `I` repeated while the daemon already counts us idle would restart
        # its idle_timeout, and a worker polling on a timeout would never scale to zero.
        if not self._idle_sent:
            self.wake.send_idle()
            self._idle_sent = True
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._stopping():
            if self.wake.wseq != self._seen_wseq:
                return self._woken()
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return True
            self.wake.wait(left)
        return False

    def _woken(self) -> bool:
        self._seen_wseq = self.wake.wseq
        self._idle_sent = False
        return True

    def request_stop(self) -> None:
        """request_stop asks for a stop after the current piece of work and ends a
        blocking wait_for_work(); safe from a signal handler or another thread."""
        self._stop.set()
        self.wake.interrupt()

    def _fenced_cb(self) -> None:
        self.wake.interrupt()
        hook = self._on_fenced
        if hook is not None:
            hook()

    # ---- connections and the registration

    def connect(self) -> psycopg.Connection:
        """connect opens a new autocommit connection with the worker's DSN and settings
        (keepalives, application_name pgwake-worker); raises psycopg.Error."""
        return connect(self._cfg.dsn)

    def _register(self) -> str:
        host = socket.gethostname() or "localhost"
        # the default 90 s timeout assumes the default 30 s heartbeat: keep 3 beats
        timeout = max(MIN_HEARTBEAT_TIMEOUT_S, 3 * self._cfg.heartbeat_s)
        try:
            with connect(self._cfg.dsn) as conn:
                row = conn.execute(
                    "SELECT pgwake.register_worker(%s, %s, %s, %s * interval '1 second')",
                    (self.stage, host, os.getpid(), timeout)).fetchone()
        except psycopg.Error as exc:
            raise RuntimeError(f"unable to register a worker for stage {self.stage}: "
                               f"{one_line(exc)}") from exc
        if row is None or row[0] is None:
            raise RuntimeError(f"unable to register a worker for stage {self.stage}: "
                               "register_worker returned no id (the stage's cap of live workers?)")
        return str(row[0])

    def _exit_registration(self) -> None:
        deadline = time.monotonic() + CLOSE_WAIT_S
        rc = Reconnector(self._cfg.dsn, "main", lambda s: time.sleep(s) is None)
        for _ in range(3):
            conn = rc.get(max(0.0, deadline - time.monotonic()))
            if conn is None:
                break
            try:
                conn.execute("SELECT pgwake.worker_exited(%s)", (self.worker_id,))
                rc.close()
                return
            except psycopg.Error as exc:
                rc.lost(exc)
        rc.close()
        log.warning("unable to end the registration of worker %s: %s (its heartbeat timeout "
                    "will)", self.worker_id, rc.error)

    def close(self) -> None:
        """close stops the heartbeat, ends a self-registration (releasing any lease
        still held) and closes the wake fd. Calling it again does nothing."""
        if self._closed:
            return
        self._closed = True
        self._hb.stop()
        if not self.spawned and not self.fenced:
            self._exit_registration()
        self.wake.close()

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        self.close()
