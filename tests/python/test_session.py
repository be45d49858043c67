"""pgwake.Session in this process: wait_for_work on W, S, end of file, timeout
and drain mode; should_stop; registration; heartbeats while idle; fencing."""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest

import pgwake
from conftest import wait_for


@pytest.fixture
def env(db, monkeypatch):
    """A spawned worker's environment; returns the daemon's end of the wake socketpair."""
    wid = db.one("SELECT pgwake.register_worker('sess', 'pytest', NULL, '5 seconds')")
    ours, theirs = socket.socketpair()
    monkeypatch.setenv("PGWAKE_STAGE", "sess")
    monkeypatch.setenv("PGWAKE_DSN", db.dsn)
    monkeypatch.setenv("PGWAKE_WORKER_ID", wid)
    monkeypatch.setenv("PGWAKE_WAKE_FD", str(theirs.detach()))  # the Session owns it now
    monkeypatch.setenv("PGWAKE_HEARTBEAT_INTERVAL", "0.2")
    ours.settimeout(10)
    yield ours
    ours.close()


def answer(sock: socket.socket, reply: bytes, delay: float = 0.05) -> threading.Thread:
    """answer plays the daemon: wait for `I`, then reply (b'' closes the socket)."""
    def main() -> None:
        assert sock.recv(1) == b"I"
        time.sleep(delay)
        if reply:
            sock.send(reply)
        else:
            sock.shutdown(socket.SHUT_RDWR)
    t = threading.Thread(target=main)
    t.start()
    return t


def nothing_sent(sock: socket.socket, seconds: float = 0.3) -> bool:
    sock.settimeout(seconds)
    try:
        return sock.recv(1) == b"unreachable"
    except socket.timeout:
        return True
    finally:
        sock.settimeout(10)


def test_wait_for_work_is_true_on_W(env):
    with pgwake.Session() as s:
        t = answer(env, b"W")
        assert s.wait_for_work() is True
        t.join()
        assert not s.should_stop()


def test_wait_for_work_is_false_on_S(env):
    with pgwake.Session() as s:
        t = answer(env, b"S")
        assert s.wait_for_work() is False
        t.join()
        assert s.should_stop()
        assert s.wait_for_work(5) is False  # sticky


def test_wait_for_work_is_false_at_end_of_file(env):
    with pgwake.Session() as s:
        t = answer(env, b"")
        assert s.wait_for_work() is False
        t.join()
        assert s.should_stop()


def test_wait_for_work_times_out_true_and_sends_no_second_I(env):
    with pgwake.Session() as s:
        start = time.monotonic()
        assert s.wait_for_work(timeout=0.3) is True
        assert time.monotonic() - start >= 0.29
        assert env.recv(1) == b"I"
        # still idle for the daemon: a second I would restart its idle_timeout
        assert s.wait_for_work(timeout=0.2) is True
        assert nothing_sent(env)
        env.send(b"W")
        assert s.wait_for_work(timeout=5) is True
        assert s.wait_for_work(timeout=0.1) is True
        assert env.recv(1) == b"I"  # after a W, idle again means a new I


def test_a_W_read_before_the_wait_counts_at_once(env):
    with pgwake.Session() as s:
        env.send(b"W")
        wait_for(lambda: s.should_stop() is False and s.wake.wseq == 1, 5, "W read")
        assert s.wait_for_work(timeout=5) is True
        assert nothing_sent(env)


def test_request_stop_ends_a_blocking_wait(env):
    with pgwake.Session() as s:
        threading.Timer(0.2, s.request_stop).start()
        assert s.wait_for_work() is False


def test_drain_mode_returns_false_at_once(db, monkeypatch):
    monkeypatch.setenv("PGWAKE_DSN", db.dsn)
    monkeypatch.delenv("PGWAKE_WAKE_FD", raising=False)
    monkeypatch.delenv("PGWAKE_WORKER_ID", raising=False)
    with pgwake.Session("sess") as s:
        assert s.drain
        assert s.should_stop() is False
        start = time.monotonic()
        assert s.wait_for_work(timeout=30) is False
        assert time.monotonic() - start < 1


def test_self_registration_heartbeats_and_exit(db, monkeypatch):
    monkeypatch.setenv("PGWAKE_DSN", db.dsn)
    monkeypatch.setenv("PGWAKE_HEARTBEAT_INTERVAL", "0.2")
    monkeypatch.delenv("PGWAKE_WAKE_FD", raising=False)
    monkeypatch.delenv("PGWAKE_WORKER_ID", raising=False)
    s = pgwake.Session("sess")
    assert not s.spawned
    row = db.q("SELECT stage, pid FROM pgwake.workers WHERE id = %s", (s.worker_id,))
    assert row == [("sess", os.getpid())]
    wait_for(lambda: s._hb.beats >= 4, 10, "heartbeats while idle")
    assert db.one("SELECT state = 'alive' AND last_heartbeat > now() - interval '1 second' "
                  "FROM pgwake.workers WHERE id = %s", (s.worker_id,))
    s.close()
    s.close()  # a second close does nothing
    assert db.one("SELECT state FROM pgwake.workers WHERE id = %s", (s.worker_id,)) == "exited"


def test_fenced_session_stops(db, env):
    with pgwake.Session() as s:
        db.q("SELECT * FROM pgwake.release_worker(%s, 'test')", (s.worker_id,))
        assert s.wait_for_work() is False  # the heartbeat thread ends the wait
        assert s.fenced and s.should_stop()


def test_spawned_session_opens_while_the_database_is_away(env, monkeypatch, caplog):
    monkeypatch.setenv("PGWAKE_DSN", "host=/nonexistent/pgwake-test port=5432 password=sekrit")
    start = time.monotonic()
    with pgwake.Session() as s:
        wait_for(lambda: "unable to connect (heartbeat connection)" in caplog.text, 10,
                 "heartbeat retrying")
        assert not s.should_stop()
    assert time.monotonic() - start < 5  # close() ends the reconnect wait at once
    assert "sekrit" not in caplog.text


def test_no_stage_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("PGWAKE_STAGE", raising=False)
    with pytest.raises(ValueError, match="PGWAKE_STAGE"):
        pgwake.Session()
