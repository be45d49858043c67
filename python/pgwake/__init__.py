"""pgwake: Python workers for the pgwake daemon (SPEC section 10).

The same protocol as the C library (include/pgwake/worker.h): the PGWAKE_*
variables the daemon sets, a heartbeat thread on its own connection for the
worker's whole life, the wake fd (`I`/`W`/`S`/end of file; drain mode without
it), reconnect with backoff while the database is away.

    import sys, pgwake

    def handle(task, cur):
        cur.execute("INSERT INTO my_results(x) VALUES (%s)", (task.payload["x"],))
        pgwake.enqueue(cur, "next_stage", {"x": task.payload["x"]})
        return {"ok": True}

    sys.exit(pgwake.run(handle))

Workers whose work lives in their own tables use pgwake.Session instead.
Everything logs through the logger "pgwake".
"""

from .runner import run
from .session import Session
from .tasks import Fail, Task, TaskCursor, enqueue

__version__ = "0.1.0"
__all__ = ["run", "enqueue", "Fail", "Session", "Task", "TaskCursor", "__version__"]
