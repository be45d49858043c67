"""pgwake.run and pgwake.enqueue in this process (drain mode, self-registered):
claim batches, enqueue's options, results, handler mistakes, lost connections."""

from __future__ import annotations

import datetime as dt
import logging

import psycopg
import pytest

import pgwake
from pgwake.runner import Runner
from conftest import DB


@pytest.fixture
def drain(db: DB, monkeypatch):
    """Run pgwake.run(handler) here in drain mode for stage 'lib'; returns its exit code."""
    monkeypatch.setenv("PGWAKE_DSN", db.dsn)
    monkeypatch.setenv("PGWAKE_STAGE", "lib")
    for k in ("PGWAKE_WAKE_FD", "PGWAKE_WORKER_ID", "PGWAKE_CLAIM_BATCH"):
        monkeypatch.delenv(k, raising=False)
    return lambda handler: pgwake.run(handler)


def test_claim_batch_claims_n_per_round_trip_each_with_its_own_token(db, drain, monkeypatch):
    monkeypatch.setenv("PGWAKE_CLAIM_BATCH", "5")
    ids = [db.enqueue("lib", {"i": i}) for i in range(12)]
    seen = []

    def handler(task, cur):
        held = cur.execute("SELECT count(*) FROM pgwake.tasks WHERE status = 'leased' "
                           "AND lease_owner = (SELECT lease_owner FROM pgwake.tasks WHERE id = %s)",
                           (task.id,)).fetchone()[0]
        seen.append((task.id, task.lease_token, held))
        return task.payload["i"]

    assert drain(handler) == 0
    assert [s[0] for s in seen] == ids
    assert [s[2] for s in seen[:5]] == [5, 4, 3, 2, 1]  # one claim of 5, completed one by one
    assert len({s[1] for s in seen}) == 12
    assert db.q("SELECT count(*), sum(result::int) FROM pgwake.tasks WHERE status = 'done'") == \
        [(12, sum(range(12)))]
    assert db.one("SELECT state FROM pgwake.workers") == "exited"


def test_enqueue_options_and_the_run_of_the_task(db, drain):
    run = db.one("INSERT INTO pgwake.runs(stage, params) VALUES ('lib', '{}') RETURNING id")
    other = db.one("INSERT INTO pgwake.runs(stage, params) VALUES ('x', '{}') RETURNING id")
    made = {}

    def handler(task, cur):
        made["plain"] = pgwake.enqueue(cur, "next")
        made["full"] = pgwake.enqueue(cur, "next", {"a": [1, "b"]}, priority=7,
                                      not_before=dt.timedelta(hours=1), max_attempts=2)
        made["secs"] = pgwake.enqueue(cur, "next", None, not_before=90)
        made["when"] = pgwake.enqueue(cur, "next", not_before=dt.datetime(2031, 1, 2, tzinfo=dt.timezone.utc))
        made["other"] = pgwake.enqueue(cur, "next", run_id=other)
        return None

    assert drain(handler) == 0
    rows = {r[0]: r[1:] for r in db.q(
        "SELECT id, run_id, payload, priority, max_attempts, "
        "round(extract(epoch FROM not_before - created_at)), not_before FROM pgwake.tasks "
        "WHERE stage = 'next'")}
    assert rows[made["plain"]][:5] == (run, {}, 0, 5, 0)
    assert rows[made["full"]][:5] == (run, {"a": [1, "b"]}, 7, 2, 3600)
    assert rows[made["secs"]][4] == 90
    assert rows[made["when"]][5] == dt.datetime(2031, 1, 2, tzinfo=dt.timezone.utc)
    assert rows[made["other"]][0] == other
    assert db.one("SELECT result IS NULL FROM pgwake.tasks WHERE stage = 'lib'")


def test_enqueue_with_a_plain_cursor(db):
    with psycopg.connect(db.dsn) as conn:
        with conn.cursor() as cur:
            t = pgwake.enqueue(cur, "plain", {"k": 1})
        conn.rollback()
    assert db.one("SELECT count(*) FROM pgwake.tasks WHERE id = %s", (t,)) == 0  # the caller's tx
    with psycopg.connect(db.dsn, autocommit=True) as conn:
        t = pgwake.enqueue(conn.cursor(), "plain", {"k": 1})
    assert db.q("SELECT run_id, payload FROM pgwake.tasks WHERE id = %s", (t,)) == [(None, {"k": 1})]


@pytest.mark.parametrize("result, error", [
    ({1, 2}, "the handler's result is not JSON: TypeError"),
    (float("nan"), "the handler's result is not JSON: ValueError"),
])
def test_a_result_that_is_not_json_fails_with_retry(db, drain, result, error):
    t = db.enqueue("lib", {})
    assert drain(lambda task, cur: result) == 0
    row = db.q("SELECT status, last_error FROM pgwake.tasks WHERE id = %s", (t,))[0]
    assert row[0] == "pending" and row[1].startswith(error)


def test_handler_mistakes_fail_the_task_and_keep_nothing(db, drain):
    ids = [db.enqueue("lib", {"n": n}) for n in range(6)]

    def handler(task, cur):
        n = task.payload["n"]
        if n == 5:
            cur.connection.autocommit = True  # would commit what follows at once
        if n == 4:  # a block of its own first thing: a savepoint in the task's transaction
            with cur.connection.transaction():
                cur.execute("INSERT INTO pyt.effects VALUES (%s, 1, 'lib')", (task.id,))
            raise RuntimeError("after the block")
        cur.execute("INSERT INTO pyt.effects VALUES (%s, 1, 'lib')", (task.id,))
        if n == 0:
            try:
                cur.execute("SELECT 1/0")
            except psycopg.errors.DivisionByZero:
                pass  # swallowed: the transaction is aborted all the same
        elif n == 1:
            cur.connection.commit()  # not allowed inside the task's transaction
        elif n == 2:
            cur.connection.rollback()  # nor this
        else:
            raise KeyError("company")

    assert drain(handler) == 0
    errors = dict(db.q("SELECT id, last_error FROM pgwake.tasks"))
    assert "aborted by an SQL error the handler caught" in errors[ids[0]]
    assert errors[ids[1]].startswith("ProgrammingError: commit() inside a pgwake task")
    assert errors[ids[2]].startswith("ProgrammingError: rollback() inside a pgwake task")
    assert errors[ids[3]] == "KeyError: 'company'"
    assert errors[ids[4]] == "RuntimeError: after the block"
    assert errors[ids[5]].startswith("ProgrammingError: autocommit inside a pgwake task")
    assert db.one("SELECT count(*) FROM pyt.effects") == 0
    assert db.one("SELECT count(*) FROM pgwake.tasks WHERE status = 'pending' AND attempts = 1") == 6


def test_what_the_handler_writes_commits_with_the_completion(db, drain):
    ids = [db.enqueue("lib", {"n": n}) for n in range(3)]

    def handler(task, cur):
        n = task.payload["n"]
        if n == 0:
            return "wrote nothing"  # completed by one autocommit statement
        if n == 1:
            with cur.connection.transaction():
                cur.execute("INSERT INTO pyt.effects VALUES (%s, 1, 'lib')", (task.id,))
        else:
            cur.execute("INSERT INTO pyt.effects VALUES (%s, 1, 'lib')", (task.id,))
            with cur.connection.transaction():  # a savepoint, rolled back alone
                cur.execute("INSERT INTO pyt.effects VALUES (%s, 2, 'lib')", (task.id,))
                raise psycopg.Rollback()
        # still inside the task's transaction, not committed by the block
        assert cur.connection.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        return n

    assert drain(handler) == 0
    assert db.q("SELECT id, result FROM pgwake.tasks WHERE status = 'done' ORDER BY id") == \
        [(ids[0], "wrote nothing"), (ids[1], 1), (ids[2], 2)]
    assert db.q("SELECT task_id, attempts FROM pyt.effects ORDER BY 1") == [(ids[1], 1), (ids[2], 1)]


def test_connection_lost_mid_handler_runs_the_task_again(db, drain, caplog):
    t = db.enqueue("lib", {})
    calls = []

    def handler(task, cur):
        calls.append(task.attempts)
        cur.execute("INSERT INTO pyt.effects VALUES (%s, %s, 'lib')", (task.id, len(calls)))
        if len(calls) == 1:
            db.q("SELECT pg_terminate_backend(%s)", (cur.connection.info.backend_pid,))
            cur.execute("SELECT 1")  # the connection is gone: the insert above never commits
        return {"calls": len(calls)}

    with caplog.at_level(logging.WARNING, logger="pgwake"):
        assert drain(handler) == 0
    assert calls == [1, 1]  # same claim, same lease: not a new attempt
    assert db.q("SELECT attempts FROM pyt.effects") == [(2,)]
    assert db.q("SELECT status, attempts, result FROM pgwake.tasks WHERE id = %s", (t,)) == \
        [("done", 1, {"calls": 2})]
    assert "main connection lost" in caplog.text


def test_a_claim_cut_off_by_a_lost_connection_is_adopted(db, monkeypatch):
    monkeypatch.setenv("PGWAKE_DSN", db.dsn)
    monkeypatch.delenv("PGWAKE_WAKE_FD", raising=False)
    monkeypatch.delenv("PGWAKE_WORKER_ID", raising=False)
    t = db.enqueue("lib", {})
    with pgwake.Session("lib") as s:
        r = Runner(lambda task, cur: None, s)
        # the claim committed but its answer never arrived
        token = db.one("SELECT lease_token FROM pgwake.claim('lib', %s)", (s.worker_id,))
        r.maybe_claimed = True
        got = r.claim(1)
        r.close()
    assert [(x.id, x.lease_token) for x in got] == [(t, token)]


def test_run_without_stage_or_with_a_bad_dsn_returns_1(db, monkeypatch, caplog):
    monkeypatch.delenv("PGWAKE_STAGE", raising=False)
    monkeypatch.delenv("PGWAKE_WORKER_ID", raising=False)
    assert pgwake.run(lambda t, c: None) == 1
    assert "no stage" in caplog.text
    assert pgwake.run(lambda t, c: None, stage="lib", dsn="host=/nonexistent password=sekrit") == 1
    assert "unable to register a worker for stage lib" in caplog.text
    assert pgwake.run(lambda t, c: None, stage="lib", dsn="password='sekrit") == 1
    assert "not a valid connection string" in caplog.text
    assert "sekrit" not in caplog.text
