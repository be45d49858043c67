-- 07_ops: the operator and daemon functions and views: prune, watch_table /
-- unwatch_table, set_stage_state, stage_pending, register_worker's max_total,
-- set_worker_pid, v_stage_stats, v_workers, v_dead_workers.
\pset null '(null)'

-- prune: done tasks, finished runs and ended workers older than keep go; the rest stays.
SELECT pgwake.register_worker('pr', 'host1') AS w \gset
INSERT INTO pgwake.tasks (stage, payload, status, finished_at) VALUES
    ('pr', '{"n": "done_old"}', 'done', now() - interval '8 days'),
    ('pr', '{"n": "done_recent"}', 'done', now() - interval '1 day'),
    ('pr', '{"n": "dead_old"}', 'dead', now() - interval '8 days'),
    ('pr', '{"n": "pending_old"}', 'pending', NULL);
UPDATE pgwake.tasks SET created_at = now() - interval '30 days', not_before = now() - interval '30 days'
 WHERE stage = 'pr';
INSERT INTO pgwake.runs (stage, params) VALUES
    ('pr', '{"run": "finished_old"}'), ('pr', '{"run": "failed_old"}'), ('pr', '{"run": "open_old"}'),
    ('pr', '{"run": "finished_recently"}'), ('pr', '{"run": "new"}');
UPDATE pgwake.runs SET created_at = now() - interval '8 days' WHERE params->>'run' <> 'new';
UPDATE pgwake.tasks t SET status = 'done', finished_at = now() - interval '8 days'
  FROM pgwake.runs r WHERE r.id = t.run_id AND r.params->>'run' = 'finished_old';
UPDATE pgwake.tasks t SET status = 'dead', finished_at = now() - interval '8 days'
  FROM pgwake.runs r WHERE r.id = t.run_id AND r.params->>'run' = 'failed_old';
UPDATE pgwake.tasks t SET status = 'done', finished_at = now() - interval '1 hour'
  FROM pgwake.runs r WHERE r.id = t.run_id AND r.params->>'run' = 'finished_recently';
INSERT INTO pgwake.workers (id, stage, host, state, started_at, ended_at) VALUES
    ('pr.exited_old', 'pr', 'host1', 'exited', now() - interval '9 days', now() - interval '8 days'),
    ('pr.dead_old', 'pr', 'host1', 'dead', now() - interval '9 days', now() - interval '8 days'),
    ('pr.exited_recent', 'pr', 'host1', 'exited', now() - interval '9 days', now() - interval '1 day'),
    ('pr.alive_old', 'pr', 'host1', 'alive', now() - interval '9 days', NULL);
-- 1 stray done task + 2 runs + 2 workers (the runs' own tasks go with them).
SELECT pgwake.prune();
SELECT COALESCE(payload->>'n', 'task of run ' || (SELECT params->>'run' FROM pgwake.runs r WHERE r.id = run_id)) AS kept_task
  FROM pgwake.tasks ORDER BY 1;
SELECT params->>'run' AS kept_run FROM pgwake.runs ORDER BY 1;
SELECT CASE id WHEN :'w' THEN '(w, registered above)' ELSE id END AS kept_worker FROM pgwake.workers ORDER BY 1;
SELECT pgwake.prune() AS second_prune;
-- A shorter keep reaches the recent ones too.
SELECT pgwake.prune(interval '1 minute');
SELECT count(*) AS tasks_left FROM pgwake.tasks;
SELECT count(*) AS runs_left FROM pgwake.runs;

-- watch_table: inserts into a user's table wake a stage (notifications: 08_notify).
-- (A temporary table here, so that a database reused between runs stays clean.)
CREATE TEMP TABLE "Lead List" (id int);
SELECT pgwake.watch_table('"Lead List"', 'research');
SELECT pgwake.watch_table('"Lead List"', 'research');
SELECT pgwake.watch_table('"Lead List"', 'a.b-c');
SELECT tgname, tgenabled, pg_catalog.pg_get_triggerdef(oid) ~ 'AFTER INSERT .* FOR EACH STATEMENT' AS per_statement
  FROM pg_catalog.pg_trigger WHERE tgrelid = '"Lead List"'::regclass ORDER BY tgname;
SELECT pgwake.unwatch_table('"Lead List"', 'research');
SELECT pgwake.unwatch_table('"Lead List"', 'research');
SELECT tgname FROM pg_catalog.pg_trigger WHERE tgrelid = '"Lead List"'::regclass ORDER BY tgname;
SELECT pgwake.watch_table('public.no_such_table', 'research');

-- set_stage_state: one row per (stage, host); since moves only when the state changes.
BEGIN;
SELECT pgwake.set_stage_state('research', 'host1', 'running');
SELECT stage, host, state, reason, since = now() AS since_now FROM pgwake.stage_state;
COMMIT;
BEGIN;
SELECT pgwake.set_stage_state('research', 'host1', 'running', 'restarted');
SELECT state, reason, since < now() AS since_kept, updated_at = now() AS updated_now FROM pgwake.stage_state;
COMMIT;
BEGIN;
SELECT pgwake.set_stage_state('research', 'host1', 'fatal', 'crash loop: 5 exits in 60 s');
SELECT state, reason, since = now() AS since_now FROM pgwake.stage_state;
COMMIT;
SELECT pgwake.set_stage_state('research', 'host2', 'stopped', 'operator');
SELECT stage, host, state, reason FROM pgwake.stage_state ORDER BY stage, host;

-- stage_pending: claimable tasks (at most lim) and seconds to the next future not_before.
INSERT INTO pgwake.tasks (stage) SELECT 'sp' FROM generate_series(1, 5);
INSERT INTO pgwake.tasks (stage, not_before) VALUES ('sp', now() + interval '1 hour'), ('sp', now() + interval '2 hours');
SELECT claimable, next_s BETWEEN 3500 AND 3600 AS in_an_hour FROM pgwake.stage_pending('sp', 3);
SELECT claimable FROM pgwake.stage_pending('sp', 100);
SELECT * FROM pgwake.stage_pending('nothing', 100);

-- register_worker's max_total caps the live workers of a stage across hosts.
SELECT pgwake.register_worker('capped', 'host1', max_total => 2) IS NOT NULL AS first;
SELECT pgwake.register_worker('capped', 'host2', max_total => 2) AS second \gset
SELECT pgwake.register_worker('capped', 'host1', max_total => 2) IS NULL AS third_refused;
SELECT pgwake.worker_exited(:'second');
SELECT pgwake.register_worker('capped', 'host1', max_total => 2) IS NOT NULL AS after_exit;
SELECT pgwake.register_worker('capped', 'host1') IS NOT NULL AS uncapped;
SELECT state, count(*) FROM pgwake.workers WHERE stage = 'capped' GROUP BY state ORDER BY state;

-- set_worker_pid: the daemon registers before fork and records the pid after.
SELECT pgwake.register_worker('pid', 'host1') AS wp \gset
SELECT pgwake.set_worker_pid(:'wp', 4242, 123456789);
SELECT pid, pid_start FROM pgwake.workers WHERE id = :'wp';
SELECT pgwake.set_worker_pid('nobody.1', 4242) AS unknown;

-- v_stage_stats: per stage pending, retrying, leased, done, dead, re-executions, oldest pending.
SELECT pgwake.register_worker('st', 'host1') AS ws \gset
INSERT INTO pgwake.tasks (stage, not_before) SELECT 'st', now() - interval '1 minute' FROM generate_series(1, 8);
SELECT pgwake.complete(id, lease_token) FROM pgwake.claim('st', :'ws', n => 2);
SELECT pgwake.fail(id, lease_token, 'gone', retry => false) FROM pgwake.claim('st', :'ws');
SELECT pgwake.fail(id, lease_token, 'try later') FROM pgwake.claim('st', :'ws');
SELECT count(*) AS claimed FROM pgwake.claim('st', :'ws', n => 2);
SELECT stage, pending, retrying, leased, done, dead, reexecuted, oldest_pending_s >= 60 AS oldest_1min
  FROM pgwake.v_stage_stats WHERE stage = 'st';
SELECT * FROM pgwake.release_worker(:'ws', 'signal 11');
SELECT stage, pending, retrying, leased, done, dead, reexecuted FROM pgwake.v_stage_stats WHERE stage = 'st';

-- v_workers: each worker with its state and the tasks it holds.
SELECT pgwake.register_worker('vw', 'host9', 777) AS wv \gset
SELECT pgwake.enqueue('vw') AS tv1 \gset
SELECT pgwake.enqueue('vw') AS tv2 \gset
SELECT count(*) AS claimed FROM pgwake.claim('vw', :'wv', n => 5);
SELECT stage, host, pid, state, reason, tasks = ARRAY[:tv1, :tv2]::bigint[] AS holds_both,
       last_seen_s BETWEEN 0 AND 60 AS seen_recently, ended_at
  FROM pgwake.v_workers WHERE id = :'wv';
SELECT pgwake.complete(:tv1, lease_token) FROM pgwake.tasks WHERE id = :tv1;
SELECT tasks = ARRAY[:tv2]::bigint[] AS holds_one FROM pgwake.v_workers WHERE id = :'wv';
SELECT stage, state, reason, tasks FROM pgwake.v_workers WHERE id = :'ws';
-- v_dead_workers: the dead only, with the reason.
SELECT stage, reason, alerted_at FROM pgwake.v_dead_workers ORDER BY stage, reason;
