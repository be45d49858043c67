-- 08_notify: which calls NOTIFY which channel, with which payload, and which
-- stay silent. This session LISTENs to itself. psql prints a notification as
-- "... received from server process with PID n" after the statement's result;
-- \o :nopid sends results through sed to drop the pid, so psql echoes the
-- statement, then "\o", then its result and notifications.
\set nopid '| sed -e ''s/PID [0-9]*/PID N/'''
\set nopid_sorted '| sed -e ''s/PID [0-9]*/PID N/'' | sort'
LISTEN pgwake_run;
LISTEN pgwake_task;
LISTEN pgwake_heartbeat;
LISTEN pgwake_wake;

-- pgwake_heartbeat "<worker_id> <state>" on registration; nothing on a heartbeat
-- or a claim (not even the one that turns starting into alive).
\o :nopid
SELECT pgwake.register_worker('nt', 'host1') AS w \gset
\o
\o :nopid
SELECT pgwake.heartbeat(:'w');
\o
\o :nopid
SELECT count(*) AS claimed FROM pgwake.claim('nt', :'w');
\o

-- pgwake_task "<stage>" on enqueue; pgwake_run "<stage> <run_id>" on a new run.
\o :nopid
SELECT pgwake.enqueue('nt', '{"n": 1}') AS t1 \gset
\o
\o :nopid
INSERT INTO pgwake.runs (stage, params) VALUES ('nt', '{"run": 1}') RETURNING id AS r \gset
\o
SELECT :r AS run_id;
-- Once per statement and stage: 1,000 rows over 2 stages, 2 notifications.
\o :nopid_sorted
INSERT INTO pgwake.tasks (stage, payload)
SELECT CASE WHEN i % 2 = 0 THEN 'even' ELSE 'odd' END, jsonb_build_object('i', i) FROM generate_series(1, 1000) i;
\o
-- COPY notifies too.
\o :nopid
COPY pgwake.tasks (stage) FROM STDIN;
copied
copied
copied
\.
\o
-- Only at commit; a rolled-back insert says nothing.
BEGIN;
\o :nopid
SELECT pgwake.enqueue('tx_a') > 0 AS enqueued_in_tx;
\o
\o :nopid
SELECT pgwake.enqueue('tx_b') > 0 AS enqueued_in_tx;
\o
\o :nopid
COMMIT;
\o
BEGIN;
INSERT INTO pgwake.runs (stage) VALUES ('rolled_back');
SELECT pgwake.enqueue('rolled_back') > 0 AS enqueued_in_tx;
\o :nopid
ROLLBACK;
\o
-- A replica session (logical replication apply, restores) inserts silently.
SET session_replication_role = replica;
\o :nopid
SELECT pgwake.enqueue('replica') > 0 AS enqueued_as_replica;
\o
\o :nopid
INSERT INTO pgwake.runs (stage) VALUES ('replica');
\o
RESET session_replication_role;

-- complete: silent. fail with retry: pgwake_task; without retry, or with the
-- last attempt used: silent (nothing to wake for).
\o :nopid
SELECT pgwake.complete(id, lease_token) FROM pgwake.claim('nt', :'w', n => 10);
\o
\o :nopid
SELECT pgwake.enqueue('flaky', max_attempts => 2) AS tf \gset
\o
SELECT count(*) AS claimed FROM pgwake.claim('flaky', :'w');
\o :nopid
SELECT pgwake.fail(:tf, lease_token, 'try again') FROM pgwake.tasks WHERE id = :tf;
\o
UPDATE pgwake.tasks SET not_before = now() WHERE id = :tf;
SELECT count(*) AS claimed FROM pgwake.claim('flaky', :'w');
\o :nopid
SELECT pgwake.fail(:tf, lease_token, 'out of attempts') FROM pgwake.tasks WHERE id = :tf;
\o
\o :nopid
SELECT pgwake.enqueue('fatal') AS tfa \gset
\o
SELECT count(*) AS claimed FROM pgwake.claim('fatal', :'w');
\o :nopid
SELECT pgwake.fail(:tfa, lease_token, 'no', retry => false) FROM pgwake.tasks WHERE id = :tfa;
\o
-- retry: pgwake_task. cancel: silent.
\o :nopid
SELECT pgwake.retry(:tf);
\o
\o :nopid
SELECT pgwake.cancel(:tf);
\o

-- release_worker: pgwake_heartbeat "<id> dead", then pgwake_task for the requeued stage.
\o :nopid
SELECT pgwake.register_worker('rel', 'host1') AS wr \gset
\o
\o :nopid
SELECT pgwake.enqueue('rel') > 0 AS enqueued;
\o
SELECT count(*) AS claimed FROM pgwake.claim('rel', :'wr');
\o :nopid
SELECT * FROM pgwake.release_worker(:'wr', 'signal 9');
\o
-- Nothing requeued (the task had no attempt left): the death only.
\o :nopid
SELECT pgwake.register_worker('rel', 'host1') AS wr2 \gset
\o
UPDATE pgwake.tasks SET max_attempts = 2 WHERE stage = 'rel';
SELECT count(*) AS claimed FROM pgwake.claim('rel', :'wr2');
\o :nopid
SELECT * FROM pgwake.release_worker(:'wr2', 'signal 9');
\o
-- A second release of a dead worker changes no state: silent.
\o :nopid
SELECT * FROM pgwake.release_worker(:'wr2', 'again');
\o

-- worker_exited: pgwake_heartbeat "<id> exited", pgwake_task when it held a lease.
\o :nopid
SELECT pgwake.register_worker('ex', 'host1') AS we \gset
\o
\o :nopid
SELECT pgwake.enqueue('ex') > 0 AS enqueued;
\o
SELECT count(*) AS claimed FROM pgwake.claim('ex', :'we');
\o :nopid
SELECT pgwake.worker_exited(:'we');
\o
\o :nopid
SELECT pgwake.worker_exited(:'we') AS again;
\o

-- expire_leases: the death of a worker past its heartbeat timeout, and its lease
-- back in its stage; a lease that merely ran out notifies its stage only.
SELECT pg_sleep(GREATEST(extract(epoch FROM pg_postmaster_start_time() + interval '1.1 seconds'
                                             - clock_timestamp()), 0)) IS NOT NULL AS server_up_1s;
\o :nopid
SELECT pgwake.register_worker('exp', 'host1', heartbeat_timeout => '1 second') AS wx \gset
\o
\o :nopid
SELECT pgwake.enqueue('exp') > 0 AS enqueued;
\o
SELECT count(*) AS claimed FROM pgwake.claim('exp', :'wx', lease => '1 hour');
UPDATE pgwake.workers SET last_heartbeat = now() - interval '1 hour' WHERE id = :'wx';
\o :nopid
SELECT released, cardinality(dead_workers) AS dead FROM pgwake.expire_leases();
\o
\o :nopid
SELECT pgwake.enqueue('short') > 0 AS enqueued;
\o
SELECT count(*) AS claimed FROM pgwake.claim('short', :'w', lease => '1 millisecond');
SELECT pg_sleep(0.05);
\o :nopid
SELECT released, cardinality(dead_workers) AS dead FROM pgwake.expire_leases();
\o
\o :nopid
SELECT released, cardinality(dead_workers) AS dead FROM pgwake.expire_leases();
\o

-- watch_table: pgwake_wake "<stage>", once per statement and watching stage.
CREATE TEMP TABLE leads (id int);
SELECT pgwake.watch_table('leads', 'research');
SELECT pgwake.watch_table('leads', 'scoring');
\o :nopid_sorted
INSERT INTO leads SELECT generate_series(1, 50);
\o
SELECT pgwake.unwatch_table('leads', 'scoring');
\o :nopid
INSERT INTO leads VALUES (51);
\o
SELECT pgwake.unwatch_table('leads', 'research');
\o :nopid
INSERT INTO leads VALUES (52);
\o

-- Operator and daemon bookkeeping is silent.
\o :nopid
SELECT pgwake.set_stage_state('nt', 'host1', 'fatal', 'crash loop');
\o
\o :nopid
SELECT pgwake.set_worker_pid(:'w', 4242);
\o
\o :nopid
SELECT count(*) AS alerted FROM pgwake.mark_alerted(ARRAY[:'wr', :'wr2', :'wx']);
\o
\o :nopid
SELECT pgwake.prune(interval '0 seconds') > 0 AS pruned;
\o
