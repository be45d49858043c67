-- 11_privileges: least privilege. Nothing in schema pgwake is public; a login
-- role granted pgwake_worker can run the worker API (enqueue, register_worker,
-- claim, heartbeat, complete, fail, worker_exited, lease_outcome) and read the
-- views, and nothing else: no table access, no release_worker, expire_leases,
-- retry, cancel, prune, set_stage_state, mark_alerted. The API is SECURITY
-- DEFINER with search_path pinned to pg_catalog, pg_temp; a session's own
-- search_path and temp objects change nothing. Triggers keep working for
-- roles with no right on the schema (watch_table's, the runs trigger).
\set nopid '| sed -e ''s/PID [0-9]*/PID N/'''
SET client_min_messages = warning;
DROP ROLE IF EXISTS trust_w;
DROP ROLE IF EXISTS trust_app;
CREATE ROLE trust_w LOGIN IN ROLE pgwake_worker;
CREATE ROLE trust_app LOGIN;
RESET client_min_messages;

-- The role exists, NOLOGIN, and `pgwake migrate` would have nothing to say.
SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname = 'pgwake_worker';
SELECT pgwake.apply_privileges() IS NULL AS nothing_to_do;

-- The catalog: no function executable by PUBLIC; exactly the worker API
-- executable by pgwake_worker, each SECURITY DEFINER with a pinned search_path;
-- no table or sequence privilege for PUBLIC or pgwake_worker.
SELECT count(*) AS public_functions FROM pg_proc p
 WHERE p.pronamespace = 'pgwake'::regnamespace AND has_function_privilege('public', p.oid, 'EXECUTE');
SELECT p.proname, p.prosecdef AS definer, p.proconfig
  FROM pg_proc p
 WHERE p.pronamespace = 'pgwake'::regnamespace AND has_function_privilege('pgwake_worker', p.oid, 'EXECUTE')
 ORDER BY 1;
SELECT p.proname AS definer_without_worker_grant FROM pg_proc p
 WHERE p.pronamespace = 'pgwake'::regnamespace AND p.prosecdef
   AND NOT has_function_privilege('pgwake_worker', p.oid, 'EXECUTE') ORDER BY 1;
SELECT count(*) FILTER (WHERE p.prosecdef AND NOT p.proconfig @> '{"search_path=pg_catalog, pg_temp"}')
           AS definer_unpinned
  FROM pg_proc p WHERE p.pronamespace = 'pgwake'::regnamespace;
-- Every other function pins it too, but for one that claim calls per row.
SELECT p.proname AS unpinned FROM pg_proc p
 WHERE p.pronamespace = 'pgwake'::regnamespace
   AND NOT COALESCE(p.proconfig @> '{"search_path=pg_catalog, pg_temp"}', false)
 ORDER BY 1;
SELECT c.relname, c.relkind,
       has_table_privilege('pgwake_worker', c.oid, 'SELECT') AS worker_select,
       has_table_privilege('pgwake_worker', c.oid, 'INSERT,UPDATE,DELETE,TRUNCATE') AS worker_write,
       has_table_privilege('public', c.oid, 'SELECT,INSERT,UPDATE,DELETE,TRUNCATE') AS public_any
  FROM pg_class c
 WHERE c.relnamespace = 'pgwake'::regnamespace AND c.relkind IN ('r', 'v')
   AND has_table_privilege('pgwake_worker', c.oid, 'SELECT,INSERT,UPDATE,DELETE,TRUNCATE')
 ORDER BY 1;
SELECT count(*) FILTER (WHERE has_table_privilege('public', c.oid, 'SELECT,INSERT,UPDATE,DELETE,TRUNCATE'))
           AS public_tables,
       count(*) FILTER (WHERE c.relkind = 'r'
                          AND has_table_privilege('pgwake_worker', c.oid, 'SELECT,INSERT,UPDATE,DELETE,TRUNCATE'))
           AS worker_tables
  FROM pg_class c WHERE c.relnamespace = 'pgwake'::regnamespace AND c.relkind IN ('r', 'v');
SELECT count(*) FILTER (WHERE has_sequence_privilege('public', c.oid, 'USAGE,SELECT,UPDATE')) AS public_seq,
       count(*) FILTER (WHERE has_sequence_privilege('pgwake_worker', c.oid, 'USAGE,SELECT,UPDATE')) AS worker_seq
  FROM (SELECT oid FROM pg_class WHERE relnamespace = 'pgwake'::regnamespace AND relkind = 'S' OFFSET 0) c;

-- A worker role: the worker API works.
SET ROLE trust_w;
SELECT pgwake.enqueue('pw', '{"n": 1}') AS t1 \gset
SELECT pgwake.enqueue('pw', '{"n": 2}') AS t2 \gset
SELECT pgwake.register_worker('pw', 'host1') AS w \gset
SELECT id = :t1 AS got_t1, attempts, lease_token AS tok1 FROM pgwake.claim('pw', :'w') \gset
SELECT :'got_t1' AS got_t1, :attempts AS attempts;
SELECT pgwake.heartbeat(:'w') AS held;
SELECT pgwake.complete(:t1, :tok1 + 1) AS guessed_token;
SELECT pgwake.complete(:t1, :tok1, '{"ok": true}') AS completed;
SELECT status FROM pgwake.lease_outcome(:t1, :tok1);
SELECT count(*) AS outcome_without_token FROM pgwake.lease_outcome(:t1, :tok1 - 1);
SELECT lease_token AS tok2 FROM pgwake.claim('pw', :'w') \gset
SELECT pgwake.fail(:t2, :tok2, 'no', retry => false) AS failed;
SELECT state FROM pgwake.v_workers WHERE id = :'w';
SELECT stage, done, dead FROM pgwake.v_stage_stats WHERE stage = 'pw';
SELECT count(*) AS dead_workers_visible FROM pgwake.v_dead_workers;
SELECT count(*) AS runs_visible FROM pgwake.v_runs;
SELECT pgwake.worker_exited(:'w') AS exited;

-- ... and nothing else.
\set ON_ERROR_STOP 0
SELECT count(*) FROM pgwake.tasks;
SELECT count(*) FROM pgwake.workers;
UPDATE pgwake.tasks SET status = 'done' WHERE id = :t2;
INSERT INTO pgwake.tasks (stage) VALUES ('pw');
INSERT INTO pgwake.runs (stage) VALUES ('pw');
DELETE FROM pgwake.workers;
SELECT nextval('pgwake.tasks_id_seq');
SELECT * FROM pgwake.release_worker(:'w', 'forged');
SELECT * FROM pgwake.expire_leases();
SELECT * FROM pgwake.expire_worker(:'w');
SELECT pgwake.retry(:t2);
SELECT pgwake.cancel(:t2);
SELECT pgwake.prune('0 seconds');
SELECT pgwake.set_stage_state('pw', 'host1', 'fatal', 'forged');
SELECT pgwake.mark_alerted(ARRAY[:'w']);
SELECT pgwake.memory_stop(:'w', 'forged');
SELECT pgwake.set_task_timeout(:'w', '1 second');
SELECT pgwake.apply_privileges();
\set ON_ERROR_STOP 1

-- A session's search_path and temp objects do not reach into the API: a temp
-- table named like ours and pg_temp first change nothing.
CREATE TEMP TABLE tasks (id bigint, status text);
SET search_path = pg_temp, public;
SELECT pgwake.enqueue('pw', '{"n": 3}') AS t3 \gset
SELECT pgwake.register_worker('pw', 'host1') AS w2 \gset
SELECT id = :t3 AS got_t3 FROM pgwake.claim('pw', :'w2');
SELECT count(*) AS temp_tasks_untouched FROM pg_temp.tasks;
DROP TABLE pg_temp.tasks;
RESET search_path;
RESET ROLE;
SELECT status, lease_owner = :'w2' AS by_w2 FROM pgwake.tasks WHERE id = :t3;

-- An application role with no right on schema pgwake: watch_table's trigger
-- on its own table fires (trigger functions need no EXECUTE at fire time).
CREATE TABLE public.trust_leads (id int);
ALTER TABLE public.trust_leads OWNER TO trust_app;
SET client_min_messages = warning;
SELECT pgwake.watch_table('public.trust_leads', 'leads');
RESET client_min_messages;
LISTEN pgwake_wake;
SET ROLE trust_app;
\o :nopid
INSERT INTO public.trust_leads VALUES (1);
\o
RESET ROLE;
UNLISTEN pgwake_wake;

-- A role granted INSERT on pgwake.runs alone starts a run: the trigger adds
-- its first task with the owner's rights.
GRANT USAGE ON SCHEMA pgwake TO trust_app;
GRANT INSERT ON pgwake.runs TO trust_app;
GRANT USAGE ON SEQUENCE pgwake.runs_id_seq TO trust_app;
SET ROLE trust_app;
INSERT INTO pgwake.runs (stage, params) VALUES ('pw_run', '{"x": 1}');
RESET ROLE;
SELECT stage, payload FROM pgwake.tasks WHERE stage = 'pw_run';

-- Clean up the cluster-wide roles.
DROP TABLE public.trust_leads;
REVOKE ALL ON SCHEMA pgwake FROM trust_app;
REVOKE ALL ON pgwake.runs FROM trust_app;
REVOKE ALL ON SEQUENCE pgwake.runs_id_seq FROM trust_app;
DROP ROLE trust_app;
DROP ROLE trust_w;
