"""The wake protocol byte by byte: this test is the daemon, on a real socketpair,
with a real Python worker process (pyworker.py) and the real database."""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
from typing import Optional

import pytest

from conftest import DB, PYTHON, PYWORKER, wait_for


class Spawned:
    """A worker spawned the way the daemon does it: registered first, then the wake fd."""

    def __init__(self, db: DB, stage: str = "proto", wake: bool = True, **env: str) -> None:
        self.db = db
        self.worker_id = db.one("SELECT pgwake.register_worker(%s, 'pytest', NULL, '5 seconds')",
                                (stage,))
        self.sock: Optional[socket.socket] = None
        self.child_fd = -1
        child = None
        if wake:
            self.sock, child = socket.socketpair()
        full = {**os.environ, "PGWAKE_STAGE": stage, "PGWAKE_WORKER_ID": self.worker_id,
                "PGWAKE_DSN": db.dsn, "PGWAKE_HEARTBEAT_INTERVAL": "0.3",
                "PGWAKE_LEASE_SECONDS": "30", **env}
        full.pop("PGWAKE_WAKE_FD", None)
        if child is not None:
            self.child_fd = child.fileno()
            full["PGWAKE_WAKE_FD"] = str(self.child_fd)
        self.proc = subprocess.Popen([PYTHON, str(PYWORKER)], env=full,
                                     pass_fds=(child.fileno(),) if child else ())
        if child is not None:
            child.close()

    def recv(self, timeout: float) -> bytes:
        """recv returns the next byte, b'' at end of file, or None after timeout."""
        assert self.sock is not None
        if not select.select([self.sock], [], [], timeout)[0]:
            return None  # type: ignore[return-value]
        return self.sock.recv(1)

    def expect(self, byte: bytes, timeout: float = 10) -> None:
        got = self.recv(timeout)
        assert got == byte, f"expected {byte!r} from the worker, got {got!r}"

    def quiet(self, seconds: float = 0.3) -> None:
        got = self.recv(seconds)
        assert got is None, f"expected nothing from the worker, got {got!r}"

    def send(self, data: bytes) -> None:
        assert self.sock is not None
        self.sock.send(data)

    def exit_code(self, timeout: float = 10) -> int:
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def spawn(db: DB):
    made = []

    def make(**kw):
        w = Spawned(db, **kw)
        made.append(w)
        return w

    yield make
    for w in made:
        w.kill()


def status(db: DB, task: int) -> str:
    return db.one("SELECT status FROM pgwake.tasks WHERE id = %s", (task,))


def test_idle_worker_sends_one_I_and_claims_on_W(db, spawn):
    w = spawn()
    w.expect(b"I")
    w.quiet()
    t = db.enqueue("proto", {"write": True})
    w.quiet(0.3)  # no claim without W: an idle worker does not poll
    assert status(db, t) == "pending"
    w.send(b"W")
    wait_for(lambda: status(db, t) == "done", 10, "task done after W")
    w.expect(b"I")
    w.quiet()
    assert db.one("SELECT count(*) FROM pyt.effects WHERE task_id = %s", (t,)) == 1
    w.send(b"S")
    assert w.exit_code() == 0


def test_W_while_busy_means_claim_again_before_I(db, spawn):
    w = spawn()
    w.expect(b"I")
    a = db.enqueue("proto", {"sleep_ms": 400})
    w.send(b"W")
    wait_for(lambda: status(db, a) == "leased", 10, "task a claimed")
    b = db.enqueue("proto", {})
    w.send(b"W")  # arrives mid-task: the worker must claim again, not report idle
    wait_for(lambda: status(db, b) == "done", 10, "task b done without another W")
    w.expect(b"I")
    w.quiet()
    assert status(db, a) == "done"


def test_S_while_busy_finishes_the_task_then_exits_0(db, spawn):
    w = spawn()
    w.expect(b"I")
    a = db.enqueue("proto", {"sleep_ms": 500, "write": True})
    b = db.enqueue("proto", {})
    w.send(b"W")
    wait_for(lambda: status(db, a) == "leased", 10, "task a claimed")
    w.send(b"S")
    assert w.exit_code() == 0
    assert status(db, a) == "done"
    assert db.one("SELECT status || ' ' || attempts FROM pgwake.tasks WHERE id = %s", (b,)) == "pending 0"


def test_S_while_idle_exits_0(db, spawn):
    w = spawn()
    w.expect(b"I")
    w.send(b"S")
    assert w.exit_code() == 0
    assert w.recv(5) == b""  # the worker closed its end


def test_end_of_file_exits_0(db, spawn):
    w = spawn()
    w.expect(b"I")
    assert w.sock is not None
    w.sock.close()
    w.sock = None
    assert w.exit_code() == 0


def test_unknown_bytes_are_ignored(db, spawn):
    w = spawn()
    w.expect(b"I")
    w.send(b"x?\n")
    w.quiet(0.3)
    assert w.proc.poll() is None
    t = db.enqueue("proto", {})
    w.send(b"W")
    wait_for(lambda: status(db, t) == "done", 10, "task done")
    w.expect(b"I")


def test_wake_fd_is_close_on_exec(db, spawn):
    w = spawn()
    w.expect(b"I")  # by now the library has set FD_CLOEXEC
    info = open(f"/proc/{w.proc.pid}/fdinfo/{w.child_fd}").read()
    flags = int(info.split("flags:")[1].split()[0], 8)
    assert flags & os.O_CLOEXEC, "children of the worker would inherit the daemon's socket"


def test_drain_mode_claims_until_nothing_is_left(db, spawn):
    ids = [db.enqueue("proto", {"write": True}) for _ in range(3)]
    w = spawn(wake=False)
    assert w.exit_code() == 0
    assert db.one("SELECT count(*) FROM pgwake.tasks WHERE status = 'done'") == 3
    assert db.one("SELECT count(*) FROM pyt.effects") == 3
    assert sorted(r[0] for r in db.q("SELECT task_id FROM pyt.effects")) == ids


def test_sigterm_finishes_the_current_task(db, spawn):
    w = spawn()
    w.expect(b"I")
    a = db.enqueue("proto", {"sleep_ms": 500, "write": True})
    w.send(b"W")
    wait_for(lambda: status(db, a) == "leased", 10, "task a claimed")
    w.proc.send_signal(signal.SIGTERM)
    assert w.exit_code() == 0
    assert status(db, a) == "done"
    assert db.one("SELECT count(*) FROM pyt.effects WHERE task_id = %s", (a,)) == 1


def test_sigterm_while_idle_exits_at_once(db, spawn):
    w = spawn()
    w.expect(b"I")
    w.proc.send_signal(signal.SIGTERM)
    assert w.exit_code(5) == 0


def test_fenced_mid_query_rolls_back_and_exits_1(db, spawn):
    w = spawn()
    w.expect(b"I")
    t = db.enqueue("proto", {"write": True, "sql_sleep": 20})
    w.send(b"W")
    wait_for(lambda: status(db, t) == "leased", 10, "task claimed")
    db.q("SELECT * FROM pgwake.release_worker(%s, 'test: declared dead')", (w.worker_id,))
    # the heartbeat (every 0.3 s) says -1: the query is cancelled, nothing committed
    assert w.exit_code(10) == 1
    assert db.one("SELECT count(*) FROM pyt.effects") == 0
    assert status(db, t) == "pending"


def test_fenced_after_a_long_pure_python_step_never_completes(db, spawn):
    w = spawn()
    w.expect(b"I")
    t = db.enqueue("proto", {"write": True, "sleep_ms": 1500})
    w.send(b"W")
    wait_for(lambda: status(db, t) == "leased", 10, "task claimed")
    db.q("SELECT * FROM pgwake.release_worker(%s, 'test: declared dead')", (w.worker_id,))
    assert w.exit_code(10) == 1
    assert db.one("SELECT count(*) FROM pyt.effects") == 0
    assert db.one("SELECT status = 'pending' AND result IS NULL FROM pgwake.tasks WHERE id = %s", (t,))


def test_batch_S_finishes_the_batch_and_SIGTERM_only_the_current_task(db, spawn):
    for sig in ("S", "TERM"):
        w = spawn(PGWAKE_CLAIM_BATCH="3")
        w.expect(b"I")
        ids = [db.enqueue("proto", {"sleep_ms": 300}) for _ in range(3)]
        w.send(b"W")
        wait_for(lambda: db.one("SELECT count(*) FROM pgwake.tasks WHERE status = 'leased' "
                                "AND lease_owner = %s", (w.worker_id,)) == 3, 10, "one claim of 3")
        if sig == "S":
            w.send(b"S")
        else:
            w.proc.send_signal(signal.SIGTERM)
        assert w.exit_code() == 0
        done = db.one("SELECT count(*) FROM pgwake.tasks WHERE status = 'done' AND id = ANY(%s)",
                      (ids,))
        assert done == (3 if sig == "S" else 1), sig


def test_S_ends_the_wait_for_an_unreachable_database(db, spawn):
    w = spawn(PGWAKE_DSN="host=/nonexistent/pgwake-test port=5432")
    w.quiet(0.5)  # no claim could run, so no I
    assert w.proc.poll() is None, "a spawned worker waits for the database instead of exiting"
    w.send(b"S")
    assert w.exit_code(10) == 0
