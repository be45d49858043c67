"""A Python worker through PgBouncer in transaction pooling, where many workers'
connections go: the library must not rely on server-side prepared statements."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time

import pytest

import pgwake
from conftest import free_port, wait_for

PGBOUNCER = "/usr/sbin/pgbouncer"


@pytest.fixture
def bouncer(db, cluster):
    if not os.access(PGBOUNCER, os.X_OK) or not cluster.dir:
        pytest.skip("needs pgbouncer and the tests' own PostgreSQL")
    d = tempfile.mkdtemp(prefix="pgwake-bouncer.")
    os.chmod(d, 0o777)  # pgbouncer refuses to run as root: it runs as postgres
    port = free_port()
    with open(f"{d}/users.txt", "w") as f:
        f.write('"postgres" ""\n')
    with open(f"{d}/pgbouncer.ini", "w") as f:
        f.write(f"[databases]\n* = host={cluster.dir} port=5432\n\n[pgbouncer]\n"
                f"listen_addr =\nlisten_port = {port}\nunix_socket_dir = {d}\n"
                f"auth_type = trust\nauth_file = {d}/users.txt\npool_mode = transaction\n"
                f"default_pool_size = 1\nlogfile = {d}/pgbouncer.log\npidfile = {d}/pgbouncer.pid\n")
    run_as = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []
    proc = subprocess.Popen(run_as + [PGBOUNCER, f"{d}/pgbouncer.ini"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: os.path.exists(f"{d}/.s.PGSQL.{port}"), 10, "pgbouncer listening")
    dbname = db.dsn.rsplit("dbname=", 1)[1]
    yield f"host={d} port={port} user=postgres dbname={dbname}"
    proc.terminate()
    proc.wait(10)
    shutil.rmtree(d, ignore_errors=True)


def test_worker_through_transaction_pooling(db, bouncer, monkeypatch, caplog):
    monkeypatch.setenv("PGWAKE_HEARTBEAT_INTERVAL", "0.05")  # its statements too, on the same pool
    for k in ("PGWAKE_WAKE_FD", "PGWAKE_WORKER_ID", "PGWAKE_CLAIM_BATCH"):
        monkeypatch.delenv(k, raising=False)
    ids = [db.enqueue("bounce", {"i": i}) for i in range(30)]

    def handler(task, cur):
        time.sleep(0.01)  # lets the heartbeat thread in between
        cur.execute("INSERT INTO pyt.effects VALUES (%s, %s, 'bounce')", (task.id, task.attempts))
        return task.payload["i"]

    assert pgwake.run(handler, stage="bounce", dsn=bouncer) == 0
    assert db.one("SELECT count(*) FROM pgwake.tasks WHERE status = 'done' AND id = ANY(%s)",
                  (ids,)) == 30
    assert db.one("SELECT count(DISTINCT task_id) FROM pyt.effects") == 30
    assert "failed" not in caplog.text, "no statement of the worker may fail behind the pool"
