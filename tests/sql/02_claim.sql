-- 02_claim: claim order (priority DESC, not_before, id), not_before in the
-- future, the batch form, claims and heartbeats of unknown / exited / dead
-- workers, and what a heartbeat of a live worker does to its leases.
\pset null '(null)'
SELECT pgwake.register_worker('work', 'host1') AS w \gset
SELECT pgwake.register_worker('work', 'host1') AS w2 \gset
SELECT state, last_heartbeat IS NULL AS never_beat FROM pgwake.workers WHERE id = :'w';

-- Order: priority DESC, then not_before, then id. Same-statement rows share now().
INSERT INTO pgwake.tasks (stage, payload, priority, not_before) VALUES
    ('work', '{"n": "p0_old_a"}', 0, now() - interval '3 minutes'),
    ('work', '{"n": "p5_new"}', 5, now() - interval '1 minute'),
    ('work', '{"n": "p5_old"}', 5, now() - interval '2 minutes'),
    ('work', '{"n": "p0_old_b"}', 0, now() - interval '3 minutes'),
    ('work', '{"n": "p-1_oldest"}', -1, now() - interval '10 minutes'),
    ('work', '{"n": "p9_future"}', 9, now() + interval '1 hour'),
    ('other', '{"n": "other_stage"}', 100, now() - interval '1 hour');
SELECT payload->>'n' AS claimed, attempts, lease_token > 0 AS has_token FROM pgwake.claim('work', :'w');
SELECT payload->>'n' AS claimed, attempts, lease_token > 0 AS has_token FROM pgwake.claim('work', :'w');
SELECT payload->>'n' AS claimed, attempts, lease_token > 0 AS has_token FROM pgwake.claim('work', :'w');
SELECT payload->>'n' AS claimed, attempts, lease_token > 0 AS has_token FROM pgwake.claim('work', :'w');
SELECT payload->>'n' AS claimed, attempts, lease_token > 0 AS has_token FROM pgwake.claim('work', :'w');
-- Only the future task is left: nothing claimable, for either worker.
SELECT payload->>'n' AS claimed FROM pgwake.claim('work', :'w');
SELECT payload->>'n' AS claimed FROM pgwake.claim('work', :'w2');
SELECT payload->>'n' AS task, status, lease_owner = :'w' AS mine, lease_interval
  FROM pgwake.tasks ORDER BY id;
-- The claim made the starting worker alive and counted as its heartbeat.
SELECT state, last_heartbeat IS NOT NULL AS beat FROM pgwake.workers WHERE id = :'w';
-- A claim refreshes a stale heartbeat even when it finds nothing.
UPDATE pgwake.workers SET last_heartbeat = now() - interval '1 hour' WHERE id = :'w';
SELECT count(*) AS claimed FROM pgwake.claim('work', :'w');
SELECT last_heartbeat > now() - interval '1 minute' AS refreshed FROM pgwake.workers WHERE id = :'w';

-- A not_before one second ahead is not claimable before its time (same
-- transaction, so now() cannot have moved), and is once that time has passed.
BEGIN;
SELECT pgwake.enqueue('soon', '{"n": "soon"}', not_before => now() + interval '1 second') > 0 AS enqueued;
SELECT count(*) AS claimed_early FROM pgwake.claim('soon', :'w');
SELECT claimable, next_s <= 1 AS due_within_1s FROM pgwake.stage_pending('soon', 10);
COMMIT;
SELECT pg_sleep(GREATEST(extract(epoch FROM not_before - clock_timestamp()), 0) + 0.05) IS NOT NULL AS waited
  FROM pgwake.tasks WHERE stage = 'soon';
SELECT payload->>'n' AS claimed_later FROM pgwake.claim('soon', :'w');

-- The batch form returns up to n rows, each with its own token.
INSERT INTO pgwake.tasks (stage) SELECT 'batch' FROM generate_series(1, 7);
SELECT count(*) AS claimed FROM pgwake.claim('batch', :'w', n => 3);
SELECT count(*) AS claimed FROM pgwake.claim('batch', :'w2', lease => '1 hour', n => 3);
SELECT count(*) AS claimed FROM pgwake.claim('batch', :'w', n => 3);
SELECT count(*) AS claimed FROM pgwake.claim('batch', :'w', n => 3);
SELECT count(*) AS claimed FROM pgwake.claim('batch', :'w', n => 0);
INSERT INTO pgwake.tasks (stage) VALUES ('batch');
SELECT count(*) AS claimed FROM pgwake.claim('batch', :'w', n => -1);
SELECT count(*) AS claimed FROM pgwake.claim('batch', :'w', n => 0);
SELECT count(*) AS claimed FROM pgwake.claim('batch', :'w', n => 100);
SELECT lease_owner = :'w' AS by_w, lease_interval, count(*) AS tasks, count(DISTINCT lease_token) AS tokens,
       bool_and(status = 'leased' AND attempts = 1) AS leased_once
  FROM pgwake.tasks WHERE stage = 'batch' GROUP BY 1, 2 ORDER BY 1;

-- Unknown, exited and dead workers claim nothing and get -1 from heartbeat.
SELECT pgwake.enqueue('fence', '{"n": "fence"}') > 0 AS enqueued;
SELECT count(*) AS claimed FROM pgwake.claim('fence', 'nobody.1');
SELECT pgwake.heartbeat('nobody.1');
SELECT count(*) AS claimed FROM pgwake.claim('fence', NULL);
SELECT pgwake.heartbeat(NULL);
SELECT pgwake.register_worker('fence', 'host1') AS wx \gset
SELECT pgwake.worker_exited(:'wx');
SELECT count(*) AS claimed FROM pgwake.claim('fence', :'wx');
SELECT pgwake.heartbeat(:'wx');
SELECT pgwake.register_worker('fence', 'host1') AS wd \gset
SELECT * FROM pgwake.release_worker(:'wd', 'signal 9');
SELECT count(*) AS claimed FROM pgwake.claim('fence', :'wd');
SELECT pgwake.heartbeat(:'wd');
-- Refused calls changed nothing: not the task, not the ended workers.
SELECT status, attempts, lease_owner FROM pgwake.tasks WHERE stage = 'fence';
SELECT id = :'wx' AS is_wx, state, reason, last_heartbeat FROM pgwake.workers
 WHERE id IN (:'wx', :'wd') ORDER BY 1;

-- A heartbeat of a live worker returns the leases it holds and extends each by
-- that task's own lease_interval; other workers' leases are left alone.
SELECT pgwake.register_worker('hb', 'host1') AS wh \gset
SELECT pgwake.heartbeat(:'wh') AS held;
SELECT state, last_heartbeat IS NOT NULL AS beat FROM pgwake.workers WHERE id = :'wh';
INSERT INTO pgwake.tasks (stage, payload)
SELECT 'hb', jsonb_build_object('n', 'hb' || i) FROM generate_series(1, 3) i;
SELECT payload->>'n' AS claimed FROM pgwake.claim('hb', :'wh', lease => '1 minute');
SELECT payload->>'n' AS claimed FROM pgwake.claim('hb', :'wh', lease => '1 hour');
SELECT payload->>'n' AS claimed FROM pgwake.claim('hb', :'w2', lease => '10 minutes');
-- Leases past their lease_until but not yet expired are still the worker's.
UPDATE pgwake.tasks SET lease_until = now() - interval '5 seconds' WHERE stage = 'hb';
BEGIN;
SELECT pgwake.heartbeat(:'wh') AS held;
SELECT payload->>'n' AS task, lease_owner = :'wh' AS mine, lease_interval,
       lease_until = now() + lease_interval AS extended_by_own_interval
  FROM pgwake.tasks WHERE stage = 'hb' ORDER BY id;
SELECT state, last_heartbeat = now() AS beat_now FROM pgwake.workers WHERE id = :'wh';
COMMIT;
-- A completed task is no longer held.
SELECT pgwake.complete(id, lease_token) FROM pgwake.tasks WHERE payload->>'n' = 'hb1';
SELECT pgwake.heartbeat(:'wh') AS held;
SELECT pgwake.heartbeat(:'w2') AS held_by_w2;
-- The heartbeat of a worker that lost a lease to expiry still counts what it holds.
UPDATE pgwake.tasks SET lease_until = now() - interval '1 second' WHERE payload->>'n' = 'hb2';
SELECT released FROM pgwake.expire_leases();
SELECT pgwake.heartbeat(:'wh') AS held;
