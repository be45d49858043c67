-- 10_expire_no_deadline: expire_leases() with nothing to watch (no live worker,
-- no lease) has no next deadline: next_deadline_s is NULL, not 0. A 0 means "a
-- deadline is due now" (e.g. a lease skipped because another session held it):
-- a caller that calls again at the deadline must be able to tell the two apart.
\pset null '(null)'
SELECT released, dead_workers, next_deadline_s FROM pgwake.expire_leases();
-- Ended workers and done work set no deadline either.
SELECT pgwake.register_worker('nd', 'host1') AS w \gset
SELECT pgwake.enqueue('nd') > 0 AS enqueued;
SELECT pgwake.complete(id, lease_token) FROM pgwake.claim('nd', :'w');
SELECT pgwake.worker_exited(:'w');
SELECT released, dead_workers, next_deadline_s FROM pgwake.expire_leases();
-- A live worker sets one: its heartbeat deadline.
SELECT pgwake.register_worker('nd', 'host1', heartbeat_timeout => '1 hour') IS NOT NULL AS registered;
SELECT released, dead_workers, next_deadline_s BETWEEN 3500 AND 3600 AS in_an_hour FROM pgwake.expire_leases();
