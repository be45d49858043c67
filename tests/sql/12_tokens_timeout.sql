-- 12_tokens_timeout: lease tokens are random 63-bit numbers, new at every claim
-- (never consecutive, never guessable from a neighbour); task_timeout sets
-- timeout_at at claim, which caps the lease (claim and heartbeat never extend
-- it past that) and, once past, makes expire_worker and expire_leases declare
-- the holder dead ('task timeout') and release the task with the attempt
-- counted, dead when none is left.
\pset null '(null)'
SELECT pgwake.register_worker('tok', 'host1') AS w \gset
INSERT INTO pgwake.tasks (stage) SELECT 'tok' FROM generate_series(1, 200);
CREATE TEMP TABLE toks AS SELECT id, lease_token FROM pgwake.claim('tok', :'w', n => 200);
-- 200 tokens: all distinct, positive, spread over the 63-bit range, and no two
-- claims' tokens consecutive in claim order.
SELECT count(*) AS n, count(DISTINCT lease_token) AS distinct_tokens, min(lease_token) > 0 AS positive,
       max(lease_token) > 2^62 AND min(lease_token) < 2^62 AS spread
  FROM toks;
SELECT count(*) AS consecutive_pairs
  FROM (SELECT lease_token - lag(lease_token) OVER (ORDER BY id) AS step FROM toks) s
 WHERE abs(step) <= 1;
-- A re-claimed task gets a new token; its neighbours' tokens do not work.
SELECT id AS t1, lease_token AS tok1 FROM toks ORDER BY id LIMIT 1 \gset
SELECT pgwake.complete(:t1, :tok1 + 1) AS plus_one, pgwake.complete(:t1, :tok1 - 1) AS minus_one,
       pgwake.fail(:t1, :tok1 + 1, 'forged') AS fail_plus_one;
SELECT * FROM pgwake.release_worker(:'w', 'test', true);
SELECT pgwake.register_worker('tok', 'host1') AS w2 \gset
SELECT lease_token <> :tok1 AS new_token FROM pgwake.claim('tok', :'w2') WHERE id = :t1;
SELECT pgwake.complete(:t1, :tok1) AS old_token;

-- task_timeout: 0 or null means none; set_task_timeout wraps register_worker.
SELECT pgwake.set_task_timeout(pgwake.register_worker('tt', 'host1'), '0') AS w0 \gset
SELECT pgwake.set_task_timeout(pgwake.register_worker('tt', 'host1', heartbeat_timeout => '1 hour'), '1 hour') AS wt \gset
SELECT pgwake.set_task_timeout(NULL::text, '1 hour') AS cap_reached_stays_null;
SELECT id, task_timeout FROM pgwake.workers WHERE id IN (:'w0', :'wt') ORDER BY started_at;
INSERT INTO pgwake.tasks (stage, payload, max_attempts) VALUES
    ('tt', '{"n": "none"}', 2), ('tt', '{"n": "capped"}', 2), ('tt', '{"n": "short"}', 3);
SELECT count(*) FROM pgwake.claim('tt', :'w0', lease => '10 minutes');
-- The lease is 2 hours, the timeout 1 hour: the lease ends at timeout_at.
SELECT count(*) FROM pgwake.claim('tt', :'wt', lease => '2 hours');
SELECT payload->>'n' AS task, timeout_at IS NOT NULL AS has_timeout,
       ceil(extract(epoch FROM lease_until - now()) / 60) AS lease_min,
       ceil(extract(epoch FROM timeout_at - now()) / 60) AS timeout_min
  FROM pgwake.tasks WHERE stage = 'tt' AND status = 'leased' ORDER BY id;
-- A heartbeat extends by lease_interval, never past timeout_at.
UPDATE pgwake.tasks SET timeout_at = now() + interval '5 minutes' WHERE payload->>'n' = 'capped';
SELECT pgwake.heartbeat(:'wt') AS held;
SELECT payload->>'n' AS task, lease_until = timeout_at AS capped FROM pgwake.tasks
 WHERE payload->>'n' = 'capped';
-- A reload changes the live workers' task_timeout for their next claims.
SELECT pgwake.set_task_timeout('tt', 'host1', '30 minutes') AS workers_updated;
SELECT count(*) FROM pgwake.claim('tt', :'wt', lease => '2 hours');
SELECT payload->>'n' AS task, ceil(extract(epoch FROM timeout_at - now()) / 60) AS timeout_min FROM pgwake.tasks
 WHERE payload->>'n' = 'short';
SELECT pgwake.set_task_timeout('tt', 'host1', '1 hour') AS workers_updated;

-- expire_worker: the earliest timeout_at is a deadline like the heartbeat's.
SELECT dead, next_deadline_s BETWEEN 250 AND 300 AS next_is_capped_timeout FROM pgwake.expire_worker(:'wt');
SELECT pgwake.heartbeat(:'wt') AS held;
UPDATE pgwake.tasks SET timeout_at = now() - interval '1 second' WHERE payload->>'n' = 'capped';
SELECT dead, next_deadline_s FROM pgwake.expire_worker(:'wt');
SELECT state, reason FROM pgwake.workers WHERE id = :'wt';
SELECT payload->>'n' AS task, status, attempts, releases, lease_owner IS NULL AS unowned,
       last_error = 'worker ' || :'wt' || ': task timeout' AS says_task_timeout
  FROM pgwake.tasks WHERE stage = 'tt' ORDER BY id;
SELECT d = :'wt' AS unalerted_wt FROM pgwake.unalerted_deaths() d;

-- expire_leases (pg_cron, the maintenance holder): the same for any worker.
-- The second timeout of 'capped' uses its last attempt: dead; 'short', held
-- by the same worker, is released too (one attempt left).
SELECT pgwake.set_task_timeout(pgwake.register_worker('tt', 'host2'), '1 hour') AS wr \gset
SELECT count(*) FROM pgwake.claim('tt', :'wr', n => 2);
SELECT pgwake.heartbeat(:'wr') AS held;
UPDATE pgwake.tasks SET timeout_at = now() - interval '1 second', lease_until = now() + interval '1 hour'
 WHERE payload->>'n' = 'capped';
SELECT released, dead_workers = ARRAY[:'wr'] AS wr_dead FROM pgwake.expire_leases();
SELECT state, reason FROM pgwake.workers WHERE id = :'wr';
SELECT payload->>'n' AS task, status, attempts, finished_at IS NOT NULL AS finished,
       last_error = 'worker ' || :'wr' || ': task timeout' AS says_task_timeout
  FROM pgwake.tasks WHERE stage = 'tt' ORDER BY id;
-- A lease whose timeout_at passed while its owner's row was busy, found by
-- the lease pass: released with a last_error that says so.
SELECT pgwake.register_worker('tt2', 'host1') AS wl \gset
INSERT INTO pgwake.tasks (stage) VALUES ('tt2');
SELECT count(*) FROM pgwake.claim('tt2', :'wl');
UPDATE pgwake.workers SET state = 'exited' WHERE id = :'wl';
UPDATE pgwake.tasks SET timeout_at = now() - interval '1 second' WHERE stage = 'tt2';
SELECT released FROM pgwake.expire_leases();
SELECT status, last_error = 'task timeout: lease of ' || :'wl' || ' cut off' AS says_cut_off
  FROM pgwake.tasks WHERE stage = 'tt2';
