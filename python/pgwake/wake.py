"""The wake fd: `I` from the worker, `W`/`S`/end of file from the daemon
(SPEC section 5, docs/worker-protocol.md section 6), plus an internal pipe so
that a signal handler or the heartbeat thread can end a blocking wait."""

from __future__ import annotations

import errno
import logging
import os
import select
import socket
import threading
from typing import Optional

log = logging.getLogger("pgwake")


class WakeFd:
    """WakeFd reads and writes the wake-fd bytes; fd None means drain mode.

    wseq counts the `W` bytes read so far, so a caller can tell whether one
    arrived since a point in time; stop and eof are sticky.
    """

    def __init__(self, fd: Optional[int]) -> None:
        self.fd = fd
        self.wseq = 0
        self.stop = False
        self.eof = False
        self._lock = threading.Lock()  # one reader at a time (a Session may be shared)
        self._intr_r, self._intr_w = os.pipe()
        os.set_blocking(self._intr_r, False)
        os.set_blocking(self._intr_w, False)
        self._sock: Optional[socket.socket] = None
        if fd is not None:
            # children of the worker must not hold the daemon's socket open
            os.set_inheritable(fd, False)
            dup = os.dup(fd)  # the socket object owns this copy; self.fd stays ours
            try:
                self._sock = socket.socket(fileno=dup)
            except OSError:
                os.close(dup)  # a pipe: plain write(2)
        self._poller = select.poll()  # the wake fd and the internal pipe, for wait()
        self._poller.register(self._intr_r, select.POLLIN)
        self._peek = select.poll()    # the wake fd alone, for poll()
        if fd is not None:
            self._poller.register(fd, select.POLLIN)
            self._peek.register(fd, select.POLLIN)

    @property
    def drain(self) -> bool:
        """drain is true without a wake fd: claim until nothing is left, then stop."""
        return self.fd is None

    def _take(self, data: bytes) -> None:
        for b in data:
            if b == 0x57:  # W
                self.wseq += 1
                log.debug("wake fd: W (work may be available)")
            elif b == 0x53:  # S
                if not self.stop:
                    log.info("wake fd: S (stop after the current task)")
                self.stop = True
            else:
                log.warning("wake fd: unexpected byte 0x%02x (ignored)", b)

    def _read(self) -> None:
        assert self.fd is not None
        try:
            data = os.read(self.fd, 256)
        except BlockingIOError:
            return
        except InterruptedError:
            return
        except OSError as exc:
            log.warning("unable to read the wake fd: %s (taken as the daemon gone)", exc.strerror)
            self._gone()
            return
        if not data:
            log.info("wake fd: end of file (the daemon is gone)")
            self._gone()
            return
        self._take(data)

    def _gone(self) -> None:
        self.eof = True
        if self.fd is not None:
            for p in (self._poller, self._peek):
                try:
                    p.unregister(self.fd)
                except KeyError:
                    pass

    def poll(self) -> None:
        """poll consumes every byte already there, without blocking (a busy worker must see `S`)."""
        # Another thread blocked in wait() reads for us: never block here.
        if not self._lock.acquire(blocking=False):
            return
        try:
            for _ in range(64):
                if self.fd is None or self.eof or not self._peek.poll(0):
                    return
                self._read()
        finally:
            self._lock.release()

    def wait(self, timeout: Optional[float]) -> bool:
        """wait blocks until a byte, end of file, interrupt() or timeout (s; None: forever).

        Returns True when something happened (the caller re-checks its flags).
        """
        with self._lock:
            ms = None if timeout is None else max(0, int(timeout * 1000 + 0.999))
            try:
                events = self._poller.poll(ms)
            except InterruptedError:
                return True
            for fd, _ in events:
                if fd == self._intr_r:
                    continue  # left unread: every stop reason is sticky, so is the interrupt
                if fd == self.fd and not self.eof:
                    self._read()
            return bool(events)

    def interrupt(self) -> None:
        """interrupt ends a wait() now and any later one; safe from a signal handler or thread."""
        try:
            os.write(self._intr_w, b"x")
        except (BlockingIOError, OSError):
            pass  # the pipe is full: it is already readable, which is all we need

    def send_idle(self) -> None:
        """send_idle writes `I`; a vanished daemon (EPIPE) counts as end of file."""
        if self.fd is None or self.eof:
            return
        try:
            if self._sock is not None:
                self._sock.send(b"I", socket.MSG_NOSIGNAL)
            else:
                os.write(self.fd, b"I")
            log.debug("wake fd: sent I (idle)")
        except OSError as exc:
            why = os.strerror(exc.errno) if exc.errno else str(exc)
            level = logging.INFO if exc.errno in (errno.EPIPE, errno.ECONNRESET) else logging.WARNING
            log.log(level, "unable to write I to the wake fd: %s (taken as the daemon gone)", why)
            self._gone()

    def close(self) -> None:
        """close closes the wake fd and the internal pipe."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self.fd is not None:
            try:
                os.close(self.fd)
            except OSError:
                pass
        for fd in (self._intr_r, self._intr_w):
            try:
                os.close(fd)
            except OSError:
                pass
        self.fd = None
