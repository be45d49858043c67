-- 13_memory_epoch: a task whose worker pgwake stops above memory_limit gets
-- its first such stop refunded and later ones counted, so it ends dead; a
-- counted stop is a death to alert. server_epoch(): no death is declared
-- within heartbeat_timeout of the first time this database saw its current
-- WAL timeline (a promotion), nor of the server's start.
\pset null '(null)'
INSERT INTO pgwake.tasks (stage, payload, max_attempts) VALUES ('mem', '{"n": "hog"}', 2);
SELECT id AS hog FROM pgwake.tasks WHERE stage = 'mem' \gset
-- Stop 1: refunded.
SELECT pgwake.register_worker('mem', 'host1') AS w1 \gset
SELECT attempts FROM pgwake.claim('mem', :'w1');
SELECT pgwake.memory_stop(:'w1', 'RSS 70 MiB above memory_limit 32 MiB') AS noted;
SELECT * FROM pgwake.release_worker(:'w1', 'signal 15', true);
SELECT status, attempts, memory_stops, last_error = 'worker ' || :'w1' || ': signal 15 (first memory_limit stop of this task: refunded)' AS why
  FROM pgwake.tasks WHERE id = :hog;
SELECT state, reason FROM pgwake.workers WHERE id = :'w1';
-- Stops 2 and 3: each costs an attempt; the third leaves none.
SELECT pgwake.register_worker('mem', 'host1') AS w2 \gset
SELECT attempts FROM pgwake.claim('mem', :'w2');
SELECT pgwake.memory_stop(:'w2', 'RSS 71 MiB above memory_limit 32 MiB') AS noted;
SELECT * FROM pgwake.release_worker(:'w2', 'signal 15', true);
SELECT status, attempts, memory_stops, last_error = 'worker ' || :'w2' || ': signal 15 (memory_limit stop 2 of this task: attempt counted)' AS why
  FROM pgwake.tasks WHERE id = :hog;
SELECT state, reason FROM pgwake.workers WHERE id = :'w2';
SELECT pgwake.register_worker('mem', 'host1') AS w3 \gset
SELECT attempts FROM pgwake.claim('mem', :'w3');
SELECT pgwake.memory_stop(:'w3', 'RSS 72 MiB above memory_limit 32 MiB') AS noted;
SELECT * FROM pgwake.release_worker(:'w3', 'signal 9', true);
SELECT status, attempts, memory_stops, finished_at IS NOT NULL AS finished FROM pgwake.tasks WHERE id = :hog;
-- The counted stops are alerted (once each, as any death); the refunded one is not.
SELECT CASE d WHEN :'w1' THEN 'w1' WHEN :'w2' THEN 'w2' WHEN :'w3' THEN 'w3' END AS unalerted
  FROM pgwake.unalerted_deaths() d ORDER BY 1;
-- Other refunded stops (shutdown, reload) are unchanged: always refunded.
INSERT INTO pgwake.tasks (stage, max_attempts) VALUES ('stop', 1);
SELECT pgwake.register_worker('stop', 'host1') AS ws \gset
SELECT count(*) FROM pgwake.claim('stop', :'ws');
SELECT * FROM pgwake.release_worker(:'ws', 'daemon stopping', true);
SELECT pgwake.register_worker('stop', 'host1') AS ws2 \gset
SELECT count(*) FROM pgwake.claim('stop', :'ws2');
SELECT * FROM pgwake.release_worker(:'ws2', 'daemon stopping', true);
SELECT status, attempts, memory_stops FROM pgwake.tasks WHERE stage = 'stop';
-- A memory stop of a worker that exits normally holding nothing costs nothing.
SELECT pgwake.register_worker('stop', 'host1') AS ws3 \gset
SELECT pgwake.memory_stop(:'ws3', 'RSS 1 MiB above memory_limit 0 MiB') AS noted;
SELECT pgwake.worker_exited(:'ws3') AS exited;

-- server_epoch: the timeline present at migration counts from the server's start.
SELECT timeline > 0 AS has_timeline, first_seen FROM pgwake.timelines;
SELECT pgwake.server_epoch() = pg_postmaster_start_time() AS epoch_is_start;
-- A worker silent for an hour with a 20 s timeout.
SELECT pg_sleep(GREATEST(extract(epoch FROM pg_postmaster_start_time() + interval '1.1 seconds'
                                             - clock_timestamp()), 0)) IS NOT NULL AS server_up_1s;
SELECT pgwake.register_worker('ep', 'host1', heartbeat_timeout => '20 seconds') AS we \gset
UPDATE pgwake.workers SET last_heartbeat = now() - interval '1 hour' WHERE id = :'we';
-- Simulate a promotion: the current timeline was first seen just now (as on a
-- standby promoted after days of running: its postmaster started long ago).
DELETE FROM pgwake.timelines;
SELECT pgwake.server_epoch() > pg_postmaster_start_time() AS epoch_after_start;
SELECT count(*) AS timelines_recorded, pgwake.server_epoch() = min(first_seen) AS epoch_is_first_seen
  FROM pgwake.timelines;
SELECT dead, next_deadline_s BETWEEN 2 AND 20 AS waits_for_epoch FROM pgwake.expire_worker(:'we');
SELECT released, dead_workers, next_deadline_s BETWEEN 2 AND 20 AS waits_for_epoch FROM pgwake.expire_leases();
SELECT state FROM pgwake.workers WHERE id = :'we';
-- Long after the promotion (and over 1 s after the server's start, waited
-- for above), a 1 s timeout's verdict is due.
UPDATE pgwake.timelines SET first_seen = now() - interval '1 hour';
UPDATE pgwake.workers SET heartbeat_timeout = '1 second' WHERE id = :'we';
SELECT released, dead_workers = ARRAY[:'we'] AS we_dead FROM pgwake.expire_leases();
SELECT state, reason FROM pgwake.workers WHERE id = :'we';
