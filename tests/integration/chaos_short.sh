#!/bin/sh
# chaos_short: the chaos suite's short form (tests/chaos/chaos.sh --short):
# 500 tasks over three stages chained by fan-out, while a few workers are
# SIGKILLed, one is SIGSTOPped past its heartbeat_timeout, PostgreSQL is
# restarted once with -m immediate (the runner's private cluster; skipped
# with PGWAKE_TEST_DSN) and the daemon is SIGKILLed once and started again.
# Every task done and completed exactly once, no lease left overdue, no
# process or zombie left; well under 60 s. The long form: `make chaos`.
exec sh "$ROOT/tests/chaos/chaos.sh" --short
