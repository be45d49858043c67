-- 05_runs: a plain INSERT INTO pgwake.runs(stage, params) creates the run's
-- first task (params as payload); v_runs derives the state: active while any
-- task is open, done once all are done (follow-ups enqueued in the same
-- transaction as complete), failed when one is dead.
\pset null '(null)'
SELECT pgwake.register_worker('discover', 'host1') AS w \gset
INSERT INTO pgwake.runs (stage, params) VALUES ('discover', '{"query": "bakeries in Lyon"}') RETURNING id AS r \gset
SELECT run_id = :r AS of_run, stage, payload, status, attempts FROM pgwake.tasks;
SELECT state, total, done, dead, progress FROM pgwake.v_runs WHERE id = :r;

-- The worker completes stage 1 and enqueues stage 2 in the same transaction.
SELECT id AS t1, lease_token AS tok1, payload->>'query' AS query FROM pgwake.claim('discover', :'w') \gset
SELECT :'query' AS claimed_query;
SELECT state, total, done FROM pgwake.v_runs WHERE id = :r;
BEGIN;
SELECT pgwake.complete(:t1, :tok1, '{"found": 2}');
SELECT pgwake.enqueue('research', jsonb_build_object('company', c), run_id => :r) > 0 AS enqueued
  FROM unnest(ARRAY['A', 'B']) c;
COMMIT;
SELECT state, total, done, progress FROM pgwake.v_runs WHERE id = :r;
SELECT pgwake.register_worker('research', 'host1') AS w2 \gset
SELECT pgwake.complete(id, lease_token) FROM pgwake.claim('research', :'w2');
SELECT state, total, done, progress FROM pgwake.v_runs WHERE id = :r;
SELECT pgwake.complete(id, lease_token) FROM pgwake.claim('research', :'w2');
SELECT state, total, done, dead, reexecuted, finished_at IS NOT NULL AS finished, progress
  FROM pgwake.v_runs WHERE id = :r;

-- A dead task fails the run, even while other tasks of it are still open.
INSERT INTO pgwake.runs (stage) VALUES ('discover') RETURNING id AS r2 \gset
SELECT payload FROM pgwake.tasks WHERE run_id = :r2;
SELECT pgwake.enqueue('research', run_id => :r2) > 0 AS enqueued;
SELECT pgwake.fail(id, lease_token, 'no such city', retry => false) FROM pgwake.claim('discover', :'w');
SELECT state, total, done, dead, progress FROM pgwake.v_runs WHERE id = :r2;
-- Retrying the dead task makes the run active again.
SELECT pgwake.retry(id) FROM pgwake.tasks WHERE run_id = :r2 AND status = 'dead';
SELECT state FROM pgwake.v_runs WHERE id = :r2;

-- A run whose task was released from a dead worker counts the re-execution.
INSERT INTO pgwake.runs (stage, params) VALUES ('discover', '{"n": 3}') RETURNING id AS r3 \gset
SELECT count(*) AS claimed FROM pgwake.claim('discover', :'w', n => 10);
SELECT * FROM pgwake.release_worker(:'w', 'signal 9');
SELECT pgwake.register_worker('discover', 'host1') AS w3 \gset
SELECT pgwake.complete(id, lease_token) FROM pgwake.claim('discover', :'w3', n => 10) ORDER BY id;
SELECT id = :r3 AS is_r3, state, total, done, reexecuted FROM pgwake.v_runs WHERE id IN (:r2, :r3) ORDER BY id;

-- A run with no task (deleted by hand) is never "done".
DELETE FROM pgwake.tasks WHERE run_id = :r3;
SELECT state, total FROM pgwake.v_runs WHERE id = :r3;

-- One INSERT of several runs creates one first task per run.
INSERT INTO pgwake.runs (stage, params) SELECT 'bulk', jsonb_build_object('i', i) FROM generate_series(1, 5) i;
SELECT count(*) AS tasks, count(DISTINCT run_id) AS runs,
       bool_and(t.payload = r.params AND t.stage = r.stage) AS params_as_payload
  FROM pgwake.tasks t JOIN pgwake.runs r ON r.id = t.run_id WHERE r.stage = 'bulk';
SELECT state, count(*) FROM pgwake.v_runs GROUP BY state ORDER BY state;
