-- 01_stage_names: stage names match ^[a-z0-9_][a-z0-9_.-]{0,62}$ everywhere a
-- stage is stored (runs, tasks, workers, stage_state, watch_table), and the
-- tables' other CHECKs reject what they must, with their error text.

-- Accepted: the full alphabet, a leading digit or underscore, 1 and 63 characters.
SELECT pgwake.enqueue('a.b-c_9') > 0 AS ok;
SELECT pgwake.enqueue('0') > 0 AS ok;
SELECT pgwake.enqueue('_x') > 0 AS ok;
SELECT pgwake.enqueue(repeat('s', 63)) > 0 AS ok;
SELECT count(*) AS accepted FROM pgwake.tasks;

-- Rejected by the domain, whichever door the name comes in through.
SELECT pgwake.enqueue(repeat('s', 64));
SELECT pgwake.enqueue('');
SELECT pgwake.enqueue('Upper');
SELECT pgwake.enqueue('.dot_first');
SELECT pgwake.enqueue('-dash_first');
SELECT pgwake.enqueue('has space');
SELECT pgwake.enqueue('semi;colon');
SELECT pgwake.enqueue(E'trailing_newline\n');
SELECT pgwake.enqueue('é');
INSERT INTO pgwake.tasks (stage) VALUES ('Bad');
INSERT INTO pgwake.tasks (stage) VALUES (NULL);
INSERT INTO pgwake.runs (stage) VALUES ('Bad');
SELECT pgwake.register_worker('Bad', 'host1');
SELECT pgwake.set_stage_state('Bad', 'host1', 'running');
CREATE TEMP TABLE leads (id int);
SELECT pgwake.watch_table('leads', 'Bad');
SELECT pgwake.watch_table('leads', '');
-- Nothing above left a row or a trigger behind.
SELECT (SELECT count(*) FROM pgwake.tasks) AS tasks, (SELECT count(*) FROM pgwake.runs) AS runs,
       (SELECT count(*) FROM pgwake.workers) AS workers,
       (SELECT count(*) FROM pgwake.stage_state) AS stage_state,
       (SELECT count(*) FROM pg_catalog.pg_trigger WHERE tgrelid = 'leads'::regclass) AS triggers;

-- The other CHECKs.
INSERT INTO pgwake.tasks (stage, status) VALUES ('s', 'running');
INSERT INTO pgwake.tasks (stage, attempts) VALUES ('s', -1);
INSERT INTO pgwake.tasks (stage, max_attempts) VALUES ('s', 0);
SELECT pgwake.enqueue('s', max_attempts => 0);
INSERT INTO pgwake.workers (id, stage, host, state) VALUES ('w', 's', 'h', 'zombie');
SELECT pgwake.set_stage_state('s', 'host1', 'paused');
-- A plain insert is valid: every other column has a default.
BEGIN;
INSERT INTO pgwake.tasks (stage) VALUES ('s');
SELECT stage, payload, status, priority, attempts, max_attempts, not_before = now() AS not_before_now,
       lease_owner, lease_until, lease_token, releases, last_error, finished_at
  FROM pgwake.tasks WHERE stage = 's';
COMMIT;
