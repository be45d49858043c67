"""The heartbeat thread: `pgwake.heartbeat(worker_id)` every interval on a
connection of its own, for the worker's whole life, idle or busy."""

from __future__ import annotations

import logging
import threading
from typing import Callable

import psycopg

from .conn import Reconnector, is_lost, is_transient, one_line

log = logging.getLogger("pgwake")

TRANSIENT_TRIES = 5


class Heartbeat:
    """Heartbeat runs the thread; on_fenced() is called (from it) when the worker is declared dead."""

    def __init__(self, dsn: str, worker_id: str, interval_s: float,
                 on_fenced: Callable[[], None]) -> None:
        self.worker_id = worker_id
        self.interval_s = interval_s
        self.fenced = threading.Event()
        self.beats = 0  # heartbeats answered so far (tests and benchmarks read it)
        self._quit = threading.Event()
        self._on_fenced = on_fenced
        self._conn = Reconnector(dsn, "heartbeat", self._sleep)
        self._thread = threading.Thread(target=self._main, name="pgwake-heartbeat", daemon=True)

    def start(self) -> None:
        """start starts the thread; its first heartbeat goes out at once."""
        self._thread.start()

    def stop(self) -> None:
        """stop ends the thread at once (mid-reconnect too) and closes its connection."""
        self._quit.set()
        if self._thread.is_alive():
            self._thread.join()

    def _sleep(self, seconds: float) -> bool:
        return not self._quit.wait(seconds)

    def _main(self) -> None:
        try:
            while self._beat() and self._sleep(self.interval_s):
                pass
        finally:
            self._conn.close()

    def _beat(self) -> bool:
        """_beat sends one heartbeat, reconnecting as long as needed; False ends the thread."""
        transient = 0
        while True:
            conn = self._conn.get()
            if conn is None:
                return False  # quit while waiting for the database
            try:
                row = conn.execute("SELECT pgwake.heartbeat(%s)", (self.worker_id,)).fetchone()
            except psycopg.Error as exc:
                if self._quit.is_set():
                    return False
                if is_lost(conn, exc):
                    self._conn.lost(exc)
                    continue
                if is_transient(exc) and transient < TRANSIENT_TRIES:
                    transient += 1  # a deadlock with our own claim over the workers row
                    continue
                log.warning("heartbeat failed: %s (trying again in %g s)", one_line(exc),
                            self.interval_s)
                return True
            held = -1 if row is None or row[0] is None else int(row[0])
            if held < 0:
                log.warning("worker %s was declared dead: fenced, its leases are others' now",
                            self.worker_id)
                self.fenced.set()
                self._on_fenced()
                return False
            self.beats += 1
            log.debug("heartbeat: %d lease(s) held", held)
            return True
