"""What a worker is told: the PGWAKE_* environment the daemon sets, or arguments."""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from typing import Mapping, Optional

log = logging.getLogger("pgwake")

DEFAULT_LEASE_S = 300.0       # pgwake.claim's own default, 5 minutes
DEFAULT_HEARTBEAT_S = 30.0    # SPEC section 7
MAX_HEARTBEAT_S = 86400.0
MAX_CLAIM_BATCH = 1000

# Decimal seconds, read without float() quirks such as "inf", "1e3" or "nan".
_SECONDS = re.compile(r"[0-9]+(\.[0-9]*)?|\.[0-9]+")


@dataclass(frozen=True)
class WorkerConfig:
    """One worker's settings, resolved from arguments, then PGWAKE_*, then defaults."""

    stage: str
    dsn: str                    # "" means libpq's own defaults (PGHOST, ...)
    worker_id: Optional[str]    # None: not spawned by pgwake, register ourselves
    lease_s: float
    heartbeat_s: float
    wake_fd: Optional[int]      # None: drain mode
    claim_batch: int

    @property
    def spawned(self) -> bool:
        """True when the daemon registered this worker (PGWAKE_WORKER_ID was set)."""
        return self.worker_id is not None


def _seconds(env: Mapping[str, str], name: str, default: float, cap: float) -> float:
    raw = env.get(name, "")
    if not raw:
        return default
    if _SECONDS.fullmatch(raw) and 0 < float(raw) <= cap:
        return float(raw)
    log.warning("%s=%r is not a number of seconds (using %g)", name, raw, default)
    return default


def _claim_batch(env: Mapping[str, str]) -> int:
    raw = env.get("PGWAKE_CLAIM_BATCH", "")
    if not raw:
        return 1
    if raw.isdigit() and 1 <= int(raw) <= MAX_CLAIM_BATCH:
        return int(raw)
    log.warning("PGWAKE_CLAIM_BATCH=%r is not a count from 1 to %d (using 1)", raw, MAX_CLAIM_BATCH)
    return 1


def _wake_fd(env: Mapping[str, str]) -> Optional[int]:
    raw = env.get("PGWAKE_WAKE_FD", "")
    if not raw:
        return None
    if raw.isdigit() and int(raw) <= 65535:
        try:
            os.fstat(int(raw))
            return int(raw)
        except OSError:
            pass
    log.warning("PGWAKE_WAKE_FD=%r is not an open file descriptor (working in drain mode)", raw)
    return None


def load(stage: Optional[str] = None, dsn: Optional[str] = None, *,
         drain: bool = False, env: Optional[Mapping[str, str]] = None) -> WorkerConfig:
    """load resolves a worker's settings; raises ValueError when no stage is known."""
    env = os.environ if env is None else env
    stage = stage or env.get("PGWAKE_STAGE", "")
    if not stage:
        raise ValueError("no stage: pass stage= or set PGWAKE_STAGE (pgwake sets it for its workers)")
    return WorkerConfig(
        stage=stage,
        dsn=dsn if dsn is not None else env.get("PGWAKE_DSN", ""),
        worker_id=env.get("PGWAKE_WORKER_ID") or None,
        lease_s=_seconds(env, "PGWAKE_LEASE_SECONDS", DEFAULT_LEASE_S, 10 * MAX_HEARTBEAT_S),
        heartbeat_s=_seconds(env, "PGWAKE_HEARTBEAT_INTERVAL", DEFAULT_HEARTBEAT_S, MAX_HEARTBEAT_S),
        wake_fd=None if drain else _wake_fd(env),
        claim_batch=_claim_batch(env),
    )
