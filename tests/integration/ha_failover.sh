#!/bin/sh
# ha_failover: `make test` runs the Patroni switchover and failover test
# (tests/ha/patroni_failover.sh, about 50 s) too; `make test-ha` runs it alone.
exec sh "$ROOT/tests/ha/patroni_failover.sh"
