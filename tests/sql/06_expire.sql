-- 06_expire: expire_leases() declares dead the workers past heartbeat_timeout
-- (a starting one by its registration), never within heartbeat_timeout of the
-- server's start; releases expired leases and every lease of a worker that is
-- not live; returns the seconds to the next deadline. Also the daemon's forms:
-- expire_worker, and the alerting bookkeeping (released_tasks, dead_worker_info,
-- unalerted_deaths, mark_alerted).
\pset null '(null)'
-- The deadlines below are 1 s after a last heartbeat an hour ago, so the server
-- must have been up for more than 1 s for them to have passed.
SELECT pg_sleep(GREATEST(extract(epoch FROM pg_postmaster_start_time() + interval '1.1 seconds'
                                             - clock_timestamp()), 0)) IS NOT NULL AS server_up_1s;

SELECT pgwake.register_worker('exp', 'host1', heartbeat_timeout => '1 second') AS wa \gset
SELECT pgwake.register_worker('exp', 'host1', heartbeat_timeout => '10 years') AS wb \gset
SELECT pgwake.register_worker('exp', 'host1', heartbeat_timeout => '1 second') AS wc \gset
SELECT pgwake.register_worker('exp', 'host1', heartbeat_timeout => '1 hour') AS wd \gset
INSERT INTO pgwake.tasks (stage, payload, max_attempts) VALUES
    ('exp', '{"n": "a1"}', 5), ('exp', '{"n": "a2_last_attempt"}', 1);
SELECT count(*) AS claimed FROM pgwake.claim('exp', :'wa', lease => '1 hour', n => 2);
INSERT INTO pgwake.tasks (stage, payload) VALUES ('exp', '{"n": "d1_expired"}'), ('exp', '{"n": "d2_valid"}');
SELECT count(*) AS claimed FROM pgwake.claim('exp', :'wd', lease => '1 second');
SELECT count(*) AS claimed FROM pgwake.claim('exp', :'wd', lease => '30 minutes');
SELECT pgwake.heartbeat(:'wb') AS wb_held;
-- A lease held by a worker nobody knows (say, pruned) is released too.
INSERT INTO pgwake.tasks (stage, payload, status, attempts, lease_owner, lease_until, lease_interval, lease_token)
VALUES ('exp', '{"n": "ghost"}', 'leased', 1, 'ghost.1', now() + interval '1 hour', '1 hour',
        4242);

-- wa and wb last beat long ago; wc never did and registered an hour ago;
-- wd's first lease ran out. wb's 10-year timeout has passed since its last
-- heartbeat, but not since the server started: it must stay alive.
UPDATE pgwake.workers SET last_heartbeat = now() - interval '1 hour' WHERE id = :'wa';
UPDATE pgwake.workers SET last_heartbeat = now() - interval '11 years' WHERE id = :'wb';
UPDATE pgwake.workers SET started_at = now() - interval '1 hour' WHERE id = :'wc';
UPDATE pgwake.tasks SET lease_until = now() - interval '1 second' WHERE payload->>'n' = 'd1_expired';
SELECT id = :'wb' AS is_wb, last_heartbeat + heartbeat_timeout < now() AS past_own_deadline
  FROM pgwake.workers WHERE id = :'wb';

SELECT released, cardinality(dead_workers) AS n_dead,
       dead_workers @> ARRAY[:'wa', :'wc'] AND dead_workers <@ ARRAY[:'wa', :'wc'] AS wa_and_wc,
       next_deadline_s BETWEEN 1700 AND 1800 AS next_is_wd_lease
  FROM pgwake.expire_leases();
SELECT CASE id WHEN :'wa' THEN 'wa' WHEN :'wb' THEN 'wb' WHEN :'wc' THEN 'wc' WHEN :'wd' THEN 'wd' END AS worker,
       state, reason, ended_at IS NOT NULL AS ended
  FROM pgwake.workers ORDER BY 1;
SELECT payload->>'n' AS task, status, attempts, releases, lease_owner IS NULL AS unowned,
       last_error = 'worker ' || :'wa' || ': heartbeat timeout' AS wa_timed_out,
       last_error = 'lease of ' || :'wd' || ' expired' AS wd_lease,
       last_error = 'lease of ghost.1 expired' AS ghost_lease
  FROM pgwake.tasks ORDER BY id;

-- Run again: nothing left to do, and the same next deadline.
SELECT released, dead_workers, next_deadline_s BETWEEN 1700 AND 1800 AS next_is_wd_lease
  FROM pgwake.expire_leases();

-- expire_worker: one worker's deadline, read fresh.
SELECT dead, next_deadline_s BETWEEN 3500 AND 3600 AS within_hour FROM pgwake.expire_worker(:'wd');
SELECT dead, next_deadline_s > 86400 * 365 * 9 AS nine_years_away FROM pgwake.expire_worker(:'wb');
-- An hour-long timeout cannot have passed since this server started: shorten it.
UPDATE pgwake.workers SET last_heartbeat = now() - interval '2 hours', heartbeat_timeout = '1 second'
 WHERE id = :'wd';
SELECT * FROM pgwake.expire_worker(:'wd');
SELECT state, reason FROM pgwake.workers WHERE id = :'wd';
SELECT payload->>'n' AS task, status, releases FROM pgwake.tasks WHERE payload->>'n' = 'd2_valid';
SELECT * FROM pgwake.expire_worker(:'wd');
SELECT * FROM pgwake.expire_worker('nobody.1');

-- What an alert says of the dead: the tasks taken back from each, last seen.
SELECT CASE id WHEN :'wa' THEN 'wa' WHEN :'wc' THEN 'wc' WHEN :'wd' THEN 'wd' END AS worker,
       released_tasks = (SELECT array_agg(t.id ORDER BY t.id) FROM pgwake.tasks t
                          WHERE t.payload->>'n' IN ('a1', 'a2_last_attempt')) AS wa_tasks,
       released_tasks = (SELECT array_agg(t.id) FROM pgwake.tasks t WHERE t.payload->>'n' = 'd2_valid') AS wd_tasks,
       released_tasks IS NULL AS none
  FROM pgwake.workers WHERE id IN (:'wa', :'wc', :'wd') ORDER BY 1;
SELECT CASE id WHEN :'wa' THEN 'wa' WHEN :'wc' THEN 'wc' END AS worker, stage, host, pid,
       last_seen_s BETWEEN 3600 AND 3700 AS seen_an_hour_ago,
       tasks = (SELECT string_agg(t.id::text, ', ' ORDER BY t.id) FROM pgwake.tasks t
                 WHERE t.payload->>'n' IN ('a1', 'a2_last_attempt')) AS wa_tasks,
       tasks IS NULL AS no_tasks, reason
  FROM pgwake.dead_worker_info(ARRAY[:'wc', :'wa', 'nobody.1']) ORDER BY 1;
-- Deaths nobody alerted yet are those of a missed heartbeat (the daemon alerts
-- the crashes it sees itself); mark_alerted claims each once, for one caller.
SELECT pgwake.register_worker('exp', 'host1') AS we \gset
SELECT * FROM pgwake.release_worker(:'we', 'signal 9');
SELECT CASE id WHEN :'wa' THEN 'wa' WHEN :'wc' THEN 'wc' WHEN :'wd' THEN 'wd' ELSE id END AS unalerted
  FROM pgwake.unalerted_deaths() id ORDER BY 1;
SELECT count(*) AS limited FROM pgwake.unalerted_deaths(2);
SELECT CASE id WHEN :'wa' THEN 'wa' WHEN :'wc' THEN 'wc' WHEN :'wd' THEN 'wd' ELSE id END AS claimed
  FROM pgwake.mark_alerted(ARRAY[:'wa', :'wc']) id ORDER BY 1;
SELECT CASE id WHEN :'wa' THEN 'wa' WHEN :'wc' THEN 'wc' WHEN :'wd' THEN 'wd' ELSE id END AS claimed
  FROM pgwake.mark_alerted(ARRAY[:'wa', :'wc', :'wd']) id ORDER BY 1;
SELECT count(*) AS claimed_again FROM pgwake.mark_alerted(ARRAY[:'wa', :'wc', :'wd']);
SELECT count(*) AS unalerted FROM pgwake.unalerted_deaths();
SELECT CASE id WHEN :'wa' THEN 'wa' WHEN :'wc' THEN 'wc' WHEN :'wd' THEN 'wd' WHEN :'we' THEN 'we' END AS worker,
       reason, alerted_at IS NOT NULL AS alerted
  FROM pgwake.v_dead_workers ORDER BY 1;
