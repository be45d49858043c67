"""pgwake.run under the real daemon: spawned Python workers, follow-ups, retries,
Fail, SIGKILL mid-task, a database restart mid-run, leases kept by the heartbeat."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from conftest import DaemonExited, stage_conf, wait_for


def status(db, task):
    return db.one("SELECT status FROM pgwake.tasks WHERE id = %s", (task,))


def effects(db, task):
    return db.q("SELECT attempts FROM pyt.effects WHERE task_id = %s ORDER BY attempts", (task,))


def test_followups_commit_with_complete_or_not_at_all(db, daemon):
    daemon(stage_conf("a") + stage_conf("b"))
    params = {"write": True, "raise_attempts": 1,
              "followup": {"stage": "b", "payload": {"write": True}}}
    run = db.one("INSERT INTO pgwake.runs(stage, params) VALUES ('a', %s) RETURNING id",
                 (json.dumps(params),))
    task = db.one("SELECT id FROM pgwake.tasks WHERE run_id = %s", (run,))
    # attempt 1 wrote a row and enqueued a follow-up, then raised: neither is kept
    wait_for(lambda: db.one("SELECT status = 'pending' AND attempts = 1 FROM pgwake.tasks "
                            "WHERE id = %s", (task,)), 10, "first attempt failed")
    assert effects(db, task) == []
    assert db.one("SELECT count(*) FROM pgwake.tasks WHERE stage = 'b'") == 0
    assert db.one("SELECT state FROM pgwake.v_runs WHERE id = %s", (run,)) == "active"
    # attempt 2 succeeds: its row and its follow-up (in the same run) commit with it
    wait_for(lambda: db.one("SELECT state = 'done' FROM pgwake.v_runs WHERE id = %s", (run,)),
             20, "run done")
    assert effects(db, task) == [(2,)]
    b = db.q("SELECT id, run_id, status FROM pgwake.tasks WHERE stage = 'b'")
    assert len(b) == 1 and b[0][1] == run and b[0][2] == "done"
    assert effects(db, b[0][0]) == [(1,)]
    assert db.one("SELECT result FROM pgwake.tasks WHERE id = %s", (task,)) == {"ok": True}


def test_exception_is_retried_with_backoff(db, daemon):
    d = daemon(stage_conf("a"))
    t = db.enqueue("a", {"raise_attempts": 2})
    wait_for(lambda: db.one("SELECT attempts = 1 AND status = 'pending' FROM pgwake.tasks "
                            "WHERE id = %s", (t,)), 10, "first failure")
    assert db.one("SELECT last_error FROM pgwake.tasks WHERE id = %s", (t,)) == \
        "RuntimeError: planned failure at attempt 1"
    wait_for(lambda: status(db, t) == "done", 30, "done on the third attempt")
    assert db.one("SELECT attempts FROM pgwake.tasks WHERE id = %s", (t,)) == 3
    # pgwake.retry_delay: 1 s after the first failure, 2 s after the second
    at = {int(e[2]): float(e[6]) for e in d.event_lines("task") if e[1] == str(t)}
    assert at[2] - at[1] >= 0.9 and at[3] - at[2] >= 1.9, f"no backoff between attempts: {at}"


def test_fail_makes_the_task_dead_at_once(db, daemon):
    daemon(stage_conf("a"))
    t = db.enqueue("a", {"write": True, "fail": "bad input: no such company"})
    wait_for(lambda: status(db, t) == "dead", 10, "task dead")
    assert db.q("SELECT attempts, last_error FROM pgwake.tasks WHERE id = %s", (t,)) == \
        [(1, "bad input: no such company")]
    assert effects(db, t) == []


def test_sigkill_mid_task_is_redone_once(db, daemon):
    d = daemon(stage_conf("a", heartbeat_timeout="5s"))
    t = db.enqueue("a", {"sleep_ms": 1500, "write": True})
    first = wait_for(lambda: [e for e in d.event_lines("task") if e[1] == str(t)], 10, "claimed")
    os.kill(int(first[0][5]), signal.SIGKILL)
    wait_for(lambda: status(db, t) == "done", 20, "task redone")
    assert effects(db, t) == [(2,)]
    assert db.one("SELECT releases FROM pgwake.tasks WHERE id = %s", (t,)) == 1
    assert db.one("SELECT reason FROM pgwake.workers WHERE id = %s", (first[0][4],)) == "signal 9"


@pytest.mark.usefixtures("cluster")
def test_database_restart_mid_run(db, daemon, cluster):
    if not cluster.restartable:
        pytest.skip("needs the tests' own PostgreSQL (not PGWAKE_TEST_DSN)")
    d = daemon(stage_conf("a", max_workers=2))
    ids = [db.enqueue("a", {"sleep_ms": 60, "write": True}) for _ in range(40)]
    wait_for(lambda: db.one("SELECT count(*) >= 8 FROM pgwake.tasks WHERE status = 'done'"), 20,
             "some tasks done")
    pids = {int(e[2]) for e in d.event_lines("start")}
    cluster.restart("immediate")
    wait_for(lambda: db.one("SELECT count(*) = 40 FROM pgwake.tasks WHERE status = 'done'"), 60,
             "every task done after the restart")
    counts = db.q("SELECT task_id, count(*) FROM pyt.effects GROUP BY 1 ORDER BY 1")
    assert counts == [(i, 1) for i in ids], "every task's work committed exactly once"
    # the workers lived through it: same processes, no exit at all
    assert pids and all(os.path.exists(f"/proc/{p}") for p in pids)
    assert d.event_lines("exit") == []
    assert "reconnected" in d.worker_log("a")


def test_heartbeat_keeps_a_long_task_leased_and_an_idle_worker_alive(db, daemon):
    daemon(stage_conf("a", lease="1500ms", heartbeat_interval="250ms", heartbeat_timeout="1500ms"))
    t = db.enqueue("a", {"sleep_ms": 2500, "write": True})
    wait_for(lambda: status(db, t) == "done", 20, "long task done")
    assert db.q("SELECT attempts, releases FROM pgwake.tasks WHERE id = %s", (t,)) == [(1, 0)]
    time.sleep(2)  # idle longer than heartbeat_timeout: the heartbeat thread keeps beating
    assert db.one("SELECT count(*) FROM pgwake.workers WHERE state = 'alive' "
                  "AND last_heartbeat > now() - interval '1.5 seconds'") == 1


def test_idle_timeout_scales_python_workers_to_zero(db, daemon):
    d = daemon(stage_conf("a", idle_timeout="500ms"))
    t = db.enqueue("a", {})
    wait_for(lambda: status(db, t) == "done", 10, "task done")
    wait_for(lambda: db.one("SELECT count(*) FROM pgwake.workers WHERE state = 'exited'") == 1,
             10, "worker stopped after idle_timeout")
    assert [e[2] for e in d.event_lines("exit")] == ["0"]


def test_claim_batch_from_the_daemon(db, daemon):
    try:
        d = daemon(stage_conf("a", claim_batch=3))
    except DaemonExited as exc:
        if "claim_batch" in str(exc):
            pytest.skip("this daemon has no claim_batch key yet")
        raise
    # one statement: the worker spawned for it finds all six at its first claim
    ids = [r[0] for r in db.q("INSERT INTO pgwake.tasks(stage, payload) SELECT 'a', "
                              "'{\"held\": true, \"sleep_ms\": 50}' FROM generate_series(1, 6) "
                              "RETURNING id")]
    wait_for(lambda: db.one("SELECT count(*) = 6 FROM pgwake.tasks WHERE status = 'done'"), 20,
             "every task done")
    held = [int(e[2]) for e in d.event_lines("held")]
    assert len(held) == 6 and max(held) == 3, f"leased to the worker at each handler call: {held}"
    assert len({db.one("SELECT lease_token FROM pgwake.tasks WHERE id = %s", (i,)) for i in ids}) == 6
