-- 04_fail_release: fail with and without retry (exponential backoff, dead once
-- the attempts are used), release_worker (requeue, dead when out of attempts,
-- refund), worker_exited, retry and cancel. Notifications: 08_notify.
\pset null '(null)'
SELECT n AS attempts, pgwake.retry_delay(n) FROM generate_series(0, 11) n;

-- fail with retry: pending again, not_before pushed back further each attempt.
SELECT pgwake.register_worker('fr', 'host1') AS w \gset
SELECT pgwake.enqueue('fr', '{"n": "flaky"}', max_attempts => 3) AS t \gset
SELECT lease_token AS tok FROM pgwake.claim('fr', :'w') \gset
BEGIN;
SELECT pgwake.fail(:t, :tok, 'attempt 1 failed');
SELECT status, attempts, last_error, not_before - now() AS backoff, lease_owner, lease_until, finished_at
  FROM pgwake.tasks WHERE id = :t;
COMMIT;
-- Waiting out its backoff, it is "retrying", not claimable.
SELECT count(*) AS claimed FROM pgwake.claim('fr', :'w');
SELECT pending, retrying, leased, done, dead FROM pgwake.v_stage_stats WHERE stage = 'fr';
UPDATE pgwake.tasks SET not_before = now() WHERE id = :t;
SELECT lease_token AS tok FROM pgwake.claim('fr', :'w') \gset
BEGIN;
SELECT pgwake.fail(:t, :tok, 'attempt 2 failed');
SELECT status, attempts, last_error, not_before - now() AS backoff FROM pgwake.tasks WHERE id = :t;
COMMIT;
UPDATE pgwake.tasks SET not_before = now() WHERE id = :t;
SELECT lease_token AS tok FROM pgwake.claim('fr', :'w') \gset
-- The third failure uses the last attempt: dead, even though retry was asked.
BEGIN;
SELECT pgwake.fail(:t, :tok, 'attempt 3 failed');
SELECT status, attempts, last_error, not_before <= now() AS not_pushed, finished_at = now() AS finished_now,
       lease_owner, lease_until
  FROM pgwake.tasks WHERE id = :t;
COMMIT;
SELECT count(*) AS claimed FROM pgwake.claim('fr', :'w');

-- fail without retry: dead at once, attempts left or not.
SELECT pgwake.enqueue('fr', '{"n": "fatal"}') AS t2 \gset
SELECT lease_token AS tok FROM pgwake.claim('fr', :'w') \gset
SELECT pgwake.fail(:t2, :tok, 'bad input', retry => false);
SELECT status, attempts, max_attempts, last_error, finished_at IS NOT NULL AS finished
  FROM pgwake.tasks WHERE id = :t2;

-- release_worker: marks the worker dead, requeues its leases; a task that has
-- used all its attempts goes dead instead (no crash loop).
SELECT pgwake.register_worker('rel', 'host1') AS wr \gset
INSERT INTO pgwake.tasks (stage, payload, max_attempts) VALUES
    ('rel', '{"n": "a"}', 5), ('rel', '{"n": "b"}', 1), ('rel', '{"n": "untouched"}', 1);
SELECT payload->>'n' AS claimed FROM pgwake.claim('rel', :'wr', n => 2) ORDER BY id;
BEGIN;
SELECT * FROM pgwake.release_worker(:'wr', 'signal 9');
SELECT payload->>'n' AS task, status, attempts, releases, lease_owner, lease_until,
       not_before = now() AS claimable_now, finished_at = now() AS finished_now,
       last_error = 'worker ' || :'wr' || ': signal 9' AS error_names_worker
  FROM pgwake.tasks WHERE stage = 'rel' ORDER BY id;
SELECT state, reason, ended_at = now() AS ended_now FROM pgwake.workers WHERE id = :'wr';
COMMIT;
-- Releasing it again finds nothing and keeps the first reason.
SELECT * FROM pgwake.release_worker(:'wr', 'again');
SELECT state, reason FROM pgwake.workers WHERE id = :'wr';

-- With refund (pgwake stopped the worker itself) the attempt is given back.
SELECT pgwake.register_worker('rel', 'host1') AS wr2 \gset
SELECT pgwake.enqueue('refund', '{"n": "last_attempt"}', max_attempts => 1) AS t3 \gset
SELECT count(*) AS claimed FROM pgwake.claim('refund', :'wr2');
SELECT * FROM pgwake.release_worker(:'wr2', 'stopped by pgwake', refund => true);
SELECT status, attempts, releases, finished_at FROM pgwake.tasks WHERE id = :t3;

-- worker_exited: a normal end; anything still held is released (the attempt counts).
SELECT pgwake.register_worker('ex', 'host1') AS we \gset
INSERT INTO pgwake.tasks (stage, payload, max_attempts) VALUES ('ex', '{"n": "e1"}', 2), ('ex', '{"n": "e2"}', 1);
SELECT count(*) AS claimed FROM pgwake.claim('ex', :'we', n => 2);
SELECT pgwake.worker_exited(:'we');
SELECT payload->>'n' AS task, status, attempts, releases, lease_owner,
       last_error = 'worker ' || :'we' || ': exited holding a lease' AS why
  FROM pgwake.tasks WHERE stage = 'ex' ORDER BY id;
SELECT state, reason, ended_at IS NOT NULL AS ended FROM pgwake.workers WHERE id = :'we';
SELECT pgwake.worker_exited(:'we') AS again;
SELECT pgwake.worker_exited(:'wr') AS of_dead_worker;
SELECT pgwake.worker_exited('nobody.1') AS of_unknown;
SELECT state FROM pgwake.workers WHERE id = :'wr';

-- retry: a dead task becomes pending now, with one more attempt when it had none.
SELECT id AS tb FROM pgwake.tasks WHERE payload->>'n' = 'b' \gset
SELECT pgwake.retry(:tb);
SELECT status, attempts, max_attempts, finished_at, not_before <= now() AS claimable
  FROM pgwake.tasks WHERE id = :tb;
-- It is claimed again along with the stage's other pending work.
SELECT pgwake.register_worker('rel', 'host1') AS wr3 \gset
SELECT payload->>'n' AS claimed, attempts FROM pgwake.claim('rel', :'wr3', n => 10) ORDER BY 1;
-- A pending task waiting out a backoff becomes claimable now.
SELECT pgwake.enqueue('later', not_before => now() + interval '1 hour') AS tl \gset
SELECT pgwake.retry(:tl);
SELECT status, not_before <= now() AS claimable FROM pgwake.tasks WHERE id = :tl;
-- Leased, done and unknown tasks are refused.
SELECT pgwake.retry(id) AS retry_leased FROM pgwake.tasks WHERE payload->>'n' = 'untouched';
SELECT pgwake.retry(:t3 + 1000) AS retry_unknown;
SELECT pgwake.enqueue('donestage') AS td \gset
SELECT pgwake.complete(id, lease_token) FROM pgwake.claim('donestage', :'wr3');
SELECT pgwake.retry(:td) AS retry_done;
SELECT status FROM pgwake.tasks WHERE id = :td;

-- cancel: a pending task becomes dead with reason cancelled; nothing else moves.
SELECT pgwake.cancel(:tl);
SELECT status, last_error, finished_at IS NOT NULL AS finished FROM pgwake.tasks WHERE id = :tl;
SELECT pgwake.cancel(:tl) AS cancel_dead;
SELECT pgwake.cancel(:td) AS cancel_done;
SELECT pgwake.cancel(id) AS cancel_leased FROM pgwake.tasks WHERE payload->>'n' = 'untouched';
SELECT status FROM pgwake.tasks WHERE payload->>'n' = 'untouched';
