-- 20_release_sql: a stage's release_sql (sql/0003) runs whenever one of its
-- workers ends, whatever ends it (release_worker, worker_exited, expire_leases);
-- checking a statement executes nothing; a failing one is recorded, never
-- raised, and retry_releases() runs it again once it is due.
\pset null '(null)'
CREATE SCHEMA pm;
CREATE TABLE pm.cand (id int PRIMARY KEY, status text NOT NULL, worker_id text);
INSERT INTO pm.cand SELECT g, 'pending', NULL FROM generate_series(1, 6) g;
-- The checks: good; no $1; another parameter; two statements (never run);
-- a missing table; unqualified (search_path is pinned); bad syntax.
SELECT pgwake.release_sql_problem('UPDATE pm.cand SET status = ''pending'', worker_id = NULL WHERE worker_id = $1 AND status = ''leased'';');
SELECT pgwake.release_sql_problem('UPDATE pm.cand SET status = ''pending'' WHERE status = ''leased''');
SELECT pgwake.release_sql_problem('UPDATE pm.cand SET status = ''pending'' WHERE worker_id = $1 AND id = $2');
SELECT pgwake.release_sql_problem('UPDATE pm.cand SET status = ''x'' WHERE worker_id = $1; DROP TABLE pm.cand');
SELECT pgwake.release_sql_problem('UPDATE pm.cand SET status = $q$ '' $q$; DROP TABLE pm.cand; -- '' WHERE worker_id = $1');
SELECT pgwake.release_sql_problem('UPDATE pm.cand SET status = ''a;b'' /* ; */ WHERE worker_id = $1 -- ;');
SELECT pgwake.release_sql_problem('UPDATE pm.nosuch SET status = ''pending'' WHERE worker_id = $1');
SELECT pgwake.release_sql_problem('UPDATE cand SET status = ''pending'' WHERE worker_id = $1');
SELECT pgwake.release_sql_problem('UPDAT pm.cand SET status = ''pending'' WHERE worker_id = $1');
SELECT count(*) AS still_six_pending FROM pm.cand WHERE status = 'pending';
-- Registering: a bad statement is refused and changes nothing.
SELECT pgwake.set_release_sql('rs', 'UPDATE pm.cand SET status = ''pending'', worker_id = NULL WHERE worker_id = $1 AND status = ''leased''');
SELECT pgwake.set_release_sql('rs', 'UPDATE pm.cand SET nope = 1 WHERE worker_id = $1');
SELECT stage, statement FROM pgwake.release_statements;
-- A crash (release_worker), a normal end (worker_exited), a missed heartbeat (expire_leases).
SELECT pgwake.register_worker('rs', 'h1') AS w1 \gset
SELECT pgwake.register_worker('rs', 'h1') AS w2 \gset
SELECT pgwake.register_worker('rs', 'h1', heartbeat_timeout => '1 ms') AS w3 \gset
UPDATE pm.cand SET status = 'leased', worker_id = :'w1' WHERE id IN (1, 2);
UPDATE pm.cand SET status = 'leased', worker_id = :'w2' WHERE id = 3;
UPDATE pm.cand SET status = 'leased', worker_id = :'w3' WHERE id = 4;
UPDATE pm.cand SET status = 'done', worker_id = :'w1' WHERE id = 5;
SELECT * FROM pgwake.release_worker(:'w1', 'signal 9');
SELECT id, status, worker_id IS NULL AS released FROM pm.cand ORDER BY id;
SELECT pgwake.worker_exited(:'w2');
SELECT id, status FROM pm.cand WHERE id = 3;
SELECT pg_sleep(0.01);
SELECT dead_workers = ARRAY[:'w3'] AS w3_dead FROM pgwake.expire_leases();
SELECT id, status FROM pm.cand WHERE id = 4;
-- Ending again (dead -> dead) runs nothing: the trigger fires on the transition only.
UPDATE pm.cand SET status = 'leased', worker_id = :'w1' WHERE id = 6;
SELECT * FROM pgwake.release_worker(:'w1', 'again');
SELECT id, status FROM pm.cand WHERE id = 6;
UPDATE pm.cand SET status = 'pending', worker_id = NULL WHERE id = 6;
-- A failing statement: the worker's end is recorded anyway, the failure with its SQLSTATE.
SELECT pgwake.register_worker('rs', 'h1') AS w4 \gset
UPDATE pm.cand SET status = 'leased', worker_id = :'w4' WHERE id = 1;
ALTER TABLE pm.cand RENAME COLUMN worker_id TO wid;
SELECT * FROM pgwake.release_worker(:'w4', 'exit 1');
SELECT state, reason FROM pgwake.workers WHERE id = :'w4';
SELECT stage, sqlstate, message, attempts, next_try_at > now() AS later FROM pgwake.release_failures;
-- Not due yet: reported, not retried.
SELECT stage, released, attempts, sqlstate FROM pgwake.retry_releases();
ALTER TABLE pm.cand RENAME COLUMN wid TO worker_id;
UPDATE pgwake.release_failures SET next_try_at = now();
SELECT stage, released, attempts FROM pgwake.retry_releases();
SELECT id, status FROM pm.cand WHERE id = 1;
SELECT count(*) AS failures_left FROM pgwake.release_failures;
-- Removing the statement: nothing runs at the next end.
SELECT pgwake.set_release_sql('rs', NULL);
SELECT pgwake.register_worker('rs', 'h1') AS w5 \gset
UPDATE pm.cand SET status = 'leased', worker_id = :'w5' WHERE id = 2;
SELECT pgwake.worker_exited(:'w5');
SELECT id, status FROM pm.cand WHERE id = 2;
-- Privileges: a worker role (pgwake_worker) can neither register a statement
-- nor read or retry the failures; ending itself runs the stage's statement
-- with the owner's rights, on a table the worker may not touch.
SELECT pgwake.set_release_sql('rs', 'UPDATE pm.cand SET status = ''pending'', worker_id = NULL WHERE worker_id = $1 AND status = ''leased''');
SET client_min_messages = warning;
DROP ROLE IF EXISTS rs_w;
CREATE ROLE rs_w LOGIN IN ROLE pgwake_worker;
RESET client_min_messages;
SELECT pgwake.register_worker('rs', 'h1') AS w6 \gset
UPDATE pm.cand SET status = 'leased', worker_id = :'w6' WHERE id = 6;
SET ROLE rs_w;
\set ON_ERROR_STOP 0
SELECT pgwake.set_release_sql('rs', 'DELETE FROM pm.cand WHERE worker_id = $1');
SELECT * FROM pgwake.retry_releases();
SELECT count(*) FROM pgwake.release_failures;
SELECT count(*) FROM pgwake.release_statements;
UPDATE pm.cand SET status = 'pending' WHERE id = 6;
\set ON_ERROR_STOP 1
SELECT pgwake.worker_exited(:'w6');
RESET ROLE;
SELECT id, status, worker_id IS NULL AS released FROM pm.cand WHERE id = 6;
DROP ROLE rs_w;
