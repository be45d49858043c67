"""The Python tests' worker: pgwake.run with a handler driven by each task's payload.

Payload keys (all optional, applied in this order):
  "sleep_ms": N            work for N ms first
  "held": true             log "held <task_id> <n>": tasks leased to this worker right now
  "sql_sleep": S           SELECT pg_sleep(S) with the handler's cursor
  "write": true            insert a row into pyt.effects with the handler's cursor
                           (it commits with the completion or not at all)
  "followup": {"stage": S, "payload": {...}}   enqueue a follow-up with pgwake.enqueue
  "raise_attempts": K      raise RuntimeError while attempts <= K
  "fail": "msg"            raise pgwake.Fail(msg)
  "exit": CODE             os._exit(CODE) (a crash: nothing completed)
  "result": X              return X (default: {"ok": true})
Event lines go to PYWORKER_LOG (one O_APPEND write each):
  start <worker_id> <pid> / task <id> <attempts> <token> <worker_id> <pid> <unix time> /
  exit <worker_id> <code>
"""

import logging
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))

import pgwake  # noqa: E402

_LOG = os.environ.get("PYWORKER_LOG")


def event(line: str) -> None:
    if _LOG:
        fd = os.open(_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.write(fd, (line + "\n").encode())
        os.close(fd)


def handle(task: pgwake.Task, cur: pgwake.TaskCursor) -> object:
    wid = os.environ.get("PGWAKE_WORKER_ID", "-")
    event(f"task {task.id} {task.attempts} {task.lease_token} {wid} {os.getpid()} {time.time():.3f}")
    p = task.payload if isinstance(task.payload, dict) else {}
    if p.get("sleep_ms"):
        time.sleep(p["sleep_ms"] / 1000)
    if p.get("held"):
        n = cur.execute("SELECT count(*) FROM pgwake.tasks WHERE status = 'leased' "
                        "AND lease_owner = %s", (wid,)).fetchone()[0]
        event(f"held {task.id} {n}")
    if p.get("sql_sleep"):
        cur.execute("SELECT pg_sleep(%s)", (p["sql_sleep"],))
    if p.get("write"):
        cur.execute("INSERT INTO pyt.effects(task_id, attempts, worker_id) VALUES (%s, %s, %s)",
                    (task.id, task.attempts, wid))
    if p.get("followup"):
        f = p["followup"]
        pgwake.enqueue(cur, f["stage"], f.get("payload"))
    if task.attempts <= p.get("raise_attempts", 0):
        raise RuntimeError(f"planned failure at attempt {task.attempts}")
    if "fail" in p:
        raise pgwake.Fail(p["fail"])
    if "exit" in p:
        os._exit(int(p["exit"]))
    return p.get("result", {"ok": True})


def main() -> int:
    logging.basicConfig(level=os.environ.get("PYWORKER_LEVEL", "INFO"),
                        format="%(levelname)s %(message)s")
    event(f"start {os.environ.get('PGWAKE_WORKER_ID', '-')} {os.getpid()}")
    rc = pgwake.run(handle)
    event(f"exit {os.environ.get('PGWAKE_WORKER_ID', '-')} {rc}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
