#!/usr/bin/env python3
"""heartbeat_monitor: the pipeline's hand-made monitor before pgwake. Every 60 s
it released the leases that had run out (a worker that crashed kept its rows
for up to the 10-minute lease plus a minute) and emailed someone. pgwake
replaces it whole: release_sql frees a dead worker's rows at once, alerts come
from [alerts], and the pg_cron backstop runs when no daemon does."""

import os
import smtplib
import sys
import time
from email.message import EmailMessage

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import leadgen  # noqa: E402

INTERVAL_S = 60


def release_expired(conn):
    released = []
    for stage, (table, ready, busy) in leadgen.STAGES.items():
        rows = conn.execute(
            f"UPDATE {table} SET status = %s, worker_id = NULL, worker_lease_until = NULL"
            f" WHERE status = %s AND worker_lease_until < now() RETURNING id, %s",
            (ready, busy, stage)).fetchall()
        released += rows
    return released


def alert(released):
    msg = EmailMessage()
    msg["Subject"] = f"Dead Workers Detected ({len(released)})"
    msg["From"] = os.environ.get("EMAIL_FROM", "monitor@localhost")
    msg["To"] = os.environ["HEARTBEAT_MONITOR_ALERT_EMAIL"]
    msg.set_content("\n".join(f"{stage}: item {item} released" for item, stage in released))
    with smtplib.SMTP(os.environ.get("SMTP_HOST", "localhost"), int(os.environ.get("SMTP_PORT", "25"))) as s:
        s.send_message(msg)


def main():
    conn = leadgen.connect()
    while True:
        released = release_expired(conn)
        if released and os.environ.get("HEARTBEAT_MONITOR_ALERT_EMAIL"):
            alert(released)
        time.sleep(INTERVAL_S)


if __name__ == "__main__":
    main()
