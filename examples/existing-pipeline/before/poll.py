"""poll: the loop every worker of the pipeline ran before pgwake. supervisord
started it; it named itself host:pid, polled its table every POLL_S seconds,
and a crash left its lease until the heartbeat monitor's next pass."""

from __future__ import annotations

import os
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import leadgen  # noqa: E402

POLL_S = 5.0


def main(stage: str) -> int:
    worker_id = f"{socket.gethostname()}:{os.getpid()}"
    conn = leadgen.connect()
    while True:
        item = leadgen.claim(conn, stage, worker_id)
        if item is None:
            time.sleep(POLL_S)  # a new run waits up to this long, or forever with no worker
            continue
        leadgen.WORK[stage](conn, worker_id, item)
