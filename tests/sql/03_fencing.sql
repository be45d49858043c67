-- 03_fencing: complete and fail act only while the task is leased with the
-- caller's token. A lease expired by expire_leases() and claimed again gets a
-- new token; the old token's complete and fail return false and change nothing.
\pset null '(null)'
SELECT pgwake.register_worker('fx', 'host1') AS w1 \gset
SELECT pgwake.register_worker('fx', 'host1') AS w2 \gset
SELECT pgwake.enqueue('fx', '{"n": 1}') AS t \gset

-- w1 claims with a lease that runs out at once; expire_leases takes it back.
SELECT lease_token AS tok1 FROM pgwake.claim('fx', :'w1', lease => '1 millisecond') \gset
SELECT pg_sleep(0.05);
SELECT released, dead_workers FROM pgwake.expire_leases();
SELECT status, attempts, releases, lease_owner, lease_until, last_error = 'lease of ' || :'w1' || ' expired' AS why
  FROM pgwake.tasks WHERE id = :t;
-- The expiry of a lease is not the death of its worker.
SELECT state FROM pgwake.workers WHERE id = :'w1';

-- w2 claims it again: a new, larger token.
SELECT lease_token AS tok2 FROM pgwake.claim('fx', :'w2', lease => '1 hour') \gset
SELECT :tok2 <> :tok1 AS new_token;

-- The old token is fenced off: every call returns false and changes nothing.
SELECT md5(t::text) AS before FROM pgwake.tasks t WHERE id = :t \gset
SELECT pgwake.complete(:t, :tok1, '{"by": "w1"}');
SELECT pgwake.fail(:t, :tok1, 'w1 failed');
SELECT pgwake.fail(:t, :tok1, 'w1 failed', retry => false);
SELECT pgwake.complete(:t, NULL);
SELECT pgwake.complete(:t + 1000, :tok2);
SELECT md5(t::text) = :'before' AS unchanged FROM pgwake.tasks t WHERE id = :t;
SELECT status, attempts, lease_owner = :'w2' AS owned_by_w2, lease_token = :tok2 AS tok2_holds, result
  FROM pgwake.tasks WHERE id = :t;

-- The holder completes once; a second complete, or a late fail, is refused.
SELECT pgwake.complete(:t, :tok2, '{"by": "w2"}');
SELECT pgwake.complete(:t, :tok2, '{"by": "w2 again"}');
SELECT pgwake.fail(:t, :tok2, 'too late');
SELECT pgwake.complete(:t, :tok1);
SELECT status, result, last_error = 'lease of ' || :'w1' || ' expired' AS last_error_kept,
       finished_at IS NOT NULL AS finished, lease_until
  FROM pgwake.tasks WHERE id = :t;

-- fail is fenced the same way: a failed-and-retried task refuses its old token.
SELECT pgwake.enqueue('fx', '{"n": 2}') AS t2 \gset
SELECT lease_token AS tok3 FROM pgwake.claim('fx', :'w1') \gset
SELECT pgwake.fail(:t2, :tok3, 'boom');
SELECT pgwake.fail(:t2, :tok3, 'boom again');
SELECT pgwake.complete(:t2, :tok3);
SELECT status, attempts, last_error FROM pgwake.tasks WHERE id = :t2;

-- Tokens are never reused: one per claim, all distinct.
SELECT count(*) AS claims, count(DISTINCT v) AS distinct_tokens
  FROM (VALUES (:tok1), (:tok2), (:tok3)) x(v);

-- A lease past its lease_until that nobody has expired yet is still the
-- holder's: its token still completes (fencing is by token, not by clock).
SELECT pgwake.enqueue('fx3', '{"n": 3}') AS t3 \gset
SELECT lease_token AS tok4 FROM pgwake.claim('fx3', :'w1', lease => '1 millisecond') \gset
SELECT pg_sleep(0.05);
SELECT pgwake.complete(:t3, :tok4);
SELECT status, releases FROM pgwake.tasks WHERE id = :t3;
