"""Fixtures for the Python library's tests: the throwaway PostgreSQL of
tests/run.sh (or one of our own), a fresh migrated database per test, the
real build/pgwake daemon, and polling helpers with generous ceilings."""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator, List, Optional

import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("BUILD", ROOT / "build"))
PGWAKE = BUILD / "pgwake"
PYWORKER = Path(__file__).with_name("pyworker.py")
PYTHON = "/usr/bin/python3"
sys.path.insert(0, str(ROOT / "python"))

_seq = itertools.count(1)


def sh(script: str, **env: str) -> str:
    """sh runs a POSIX shell snippet from the checkout; raises on failure."""
    out = subprocess.run(["sh", "-c", script], cwd=ROOT, env={**os.environ, **env},
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{script!r} failed: {out.stderr.strip()}")
    return out.stdout.strip()


class Cluster:
    """The PostgreSQL the tests use: tests/run.sh's (PGTMP_DSN) or one we start."""

    def __init__(self) -> None:
        self.own = False
        self.external = os.environ.get("PGWAKE_TEST_DSN", "")
        self.dsn = os.environ.get("PGTMP_DSN", "")
        self.dir = os.environ.get("PGTMP_DIR", "")
        if not self.external and not self.dsn:
            self.dir = sh(". tests/lib/pgtmp.sh && pgtmp_start >&2 && echo $PGTMP_DIR")
            self.dsn = f"host={self.dir} port=5432 user=postgres"
            self.own = True
        if not self.external:
            with psycopg.connect(self.dsn + " dbname=postgres", autocommit=True) as c:
                if not c.execute("SELECT 1 FROM pg_database WHERE datname = 'pgwake_template'").fetchone():
                    c.execute("CREATE DATABASE pgwake_template")
                    subprocess.run([str(PGWAKE), "migrate", "-d", self.dsn + " dbname=pgwake_template"],
                                   check=True, stdout=subprocess.DEVNULL)

    @property
    def restartable(self) -> bool:
        return bool(self.dir)

    def restart(self, mode: str = "immediate") -> None:
        """restart is tests/lib/pgtmp.sh pgtmp_restart: pg_ctl restart -m MODE."""
        sh(f'. tests/lib/pgtmp.sh && PGTMP_DIR="{self.dir}" && pgtmp_restart {mode}')

    def new_db(self) -> str:
        if self.external:
            with psycopg.connect(self.external, autocommit=True) as c:
                c.execute("DROP SCHEMA IF EXISTS pgwake CASCADE")
                c.execute("DROP SCHEMA IF EXISTS pyt CASCADE")
            subprocess.run([str(PGWAKE), "migrate", "-d", self.external], check=True,
                           stdout=subprocess.DEVNULL)
            return self.external
        name = f"py{os.getpid()}_{next(_seq)}"
        with psycopg.connect(self.dsn + " dbname=postgres", autocommit=True) as c:
            c.execute(f"CREATE DATABASE {name} TEMPLATE pgwake_template")
        return f"{self.dsn} dbname={name}"

    def drop_db(self, dsn: str) -> None:
        if self.external:
            return
        name = dsn.rsplit("dbname=", 1)[1]
        with psycopg.connect(self.dsn + " dbname=postgres", autocommit=True) as c:
            c.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def stop(self) -> None:
        if self.own:
            sh(f'. tests/lib/pgtmp.sh && PGTMP_DIR="{self.dir}" && pgtmp_stop')


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    if os.environ.get("PGWAKE_TEST_DSN"):
        db = psycopg.connect(os.environ["PGWAKE_TEST_DSN"]).execute(
            "SELECT current_database()").fetchone()[0]
        if not db.endswith("_test") and os.environ.get("PGWAKE_TEST_DESTRUCTIVE") != "1":
            pytest.exit(f'refusing to run tests against database "{db}": its name does not end '
                        "in _test (set PGWAKE_TEST_DESTRUCTIVE=1 to allow it)", 2)
    c = Cluster()
    yield c
    c.stop()


class DB:
    """One test's database: dsn, and q() for one-off queries."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    def q(self, sql: str, params: Any = None) -> List[Any]:
        with psycopg.connect(self.dsn, autocommit=True) as c:
            cur = c.execute(sql, params)
            return cur.fetchall() if cur.description else []

    def one(self, sql: str, params: Any = None) -> Any:
        rows = self.q(sql, params)
        return rows[0][0] if rows else None

    def enqueue(self, stage: str, payload: Any = None, **kw: Any) -> int:
        from psycopg.types.json import Jsonb
        args = ", ".join(f"{k} => %s" for k in kw)
        return self.one(f"SELECT pgwake.enqueue(%s, %s{', ' + args if args else ''})",
                        [stage, Jsonb(payload if payload is not None else {}), *kw.values()])


@pytest.fixture
def db(cluster: Cluster) -> Iterator[DB]:
    dsn = cluster.new_db()
    d = DB(dsn)
    d.q("CREATE SCHEMA pyt")
    d.q("CREATE TABLE pyt.effects (task_id bigint, attempts int, worker_id text)")
    yield d
    cluster.drop_db(dsn)


def wait_for(cond: Callable[[], Any], timeout: float, what: str) -> Any:
    """wait_for polls cond every 20 ms until it is truthy; fails the test after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout} s: {what}")
        time.sleep(0.02)


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class DaemonExited(Exception):
    """The daemon exited before it was ready (its log is the message)."""


class Daemon:
    """The real build/pgwake run with one config; stop() returns its exit code."""

    def __init__(self, tmp: Path, dsn: str, stages: str, host: str = "py-1") -> None:
        self.tmp = tmp
        self.dsn = dsn
        self.log = tmp / "daemon.log"
        self.events = tmp / "events.log"
        self.conf = tmp / "pgwake.conf"
        # lock_file in tmp: the default is one file per config path in /tmp, left behind.
        self.conf.write_text(f"[pgwake]\nhost = {host}\nlog_dir = {tmp}/logs\n"
                             f"http_listen = 127.0.0.1:{free_port()}\nrecount_interval = 0\n"
                             f"lock_file = {tmp}/pgwake.lock\n\n"
                             + stages)
        self.conf.chmod(0o600)
        self.proc: Optional[subprocess.Popen] = None

    def start(self) -> "Daemon":
        env = {**os.environ, "PYWORKER_LOG": str(self.events)}
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([str(PGWAKE), "run", "-c", str(self.conf), "-d", self.dsn],
                                         stdout=out, stderr=subprocess.STDOUT, env=env)
        wait_for(lambda: " ready: " in self.log.read_text() or self.proc.poll() is not None, 20,
                 "daemon ready")
        if self.proc.poll() is not None:
            raise DaemonExited(self.log.read_text())
        return self

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def event_lines(self, kind: str) -> List[List[str]]:
        if not self.events.exists():
            return []
        return [ln.split() for ln in self.events.read_text().splitlines() if ln.startswith(kind + " ")]

    def worker_log(self, stage: str) -> str:
        p = self.tmp / "logs" / f"{stage}.log"
        return p.read_text() if p.exists() else ""


def stage_conf(name: str, **keys: Any) -> str:
    """stage_conf is a [stage:NAME] section running pyworker.py (keys override the defaults)."""
    conf = {"command": f"{PYTHON} {PYWORKER}", "max_workers": 1, "idle_timeout": "30s",
            "heartbeat_interval": "500ms", "heartbeat_timeout": "5s", "lease": "30s",
            "restart_delay": "100ms", **keys}
    return f"[stage:{name}]\n" + "".join(f"{k} = {v}\n" for k, v in conf.items()) + "\n"


@pytest.fixture
def daemon(db: DB, tmp_path: Path) -> Iterator[Callable[..., Daemon]]:
    started: List[Daemon] = []

    def make(stages: str, **kw: Any) -> Daemon:
        d = Daemon(tmp_path, db.dsn, stages, **kw).start()
        started.append(d)
        return d

    yield make
    for d in started:
        d.stop()
        if d.proc and d.proc.returncode not in (0, None):
            print(d.log.read_text()[-3000:])
