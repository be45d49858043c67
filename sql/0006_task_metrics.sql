-- 0006_task_metrics: what /metrics needs to tell run time from queue wait,
-- and to count failed attempts when they happen rather than when their task
-- ends.
--  - tasks.started_at: when the current (or last) attempt was claimed. Set in
--    the claim's own UPDATE, which rewrites the row anyway: no extra write.
--  - task_failures: one row per fail() that left the task to be retried or
--    dead. Insert-only, so concurrent failures never wait on each other
--    (a per-stage counter row would be a lock every failing worker queues on);
--    pruned with the done tasks by prune().

ALTER TABLE pgwake.tasks ADD COLUMN started_at timestamptz;
COMMENT ON COLUMN pgwake.tasks.started_at IS 'when the latest attempt was claimed';

CREATE TABLE pgwake.task_failures (
    task_id   bigint NOT NULL,
    stage     pgwake.stage_name NOT NULL,
    failed_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE INDEX task_failures_failed_at_idx ON pgwake.task_failures (failed_at);
COMMENT ON TABLE pgwake.task_failures IS
    'one row per failed attempt (pgwake.fail), for the pgwake_task_failures_total counter; pruned by prune()';

CREATE OR REPLACE FUNCTION pgwake.claim(stage text, worker_id text, lease interval DEFAULT '5 minutes',
                                        n int DEFAULT 1)
RETURNS TABLE (id bigint, run_id bigint, payload jsonb, attempts int, lease_token bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    w_state   text;
    w_beat    timestamptz;
    w_timeout interval;
BEGIN
    -- The row lock waits for a release_worker in flight and then sees its
    -- verdict. FOR NO KEY UPDATE, not FOR SHARE: this transaction may update the
    -- row next, and two share-lockers upgrading at once (a claim and the same
    -- worker's heartbeat) would deadlock.
    SELECT w.state, w.last_heartbeat, w.task_timeout INTO w_state, w_beat, w_timeout
      FROM pgwake.workers w WHERE w.id = claim.worker_id FOR NO KEY UPDATE;
    IF w_state IS NULL OR w_state NOT IN ('starting', 'alive') THEN
        RETURN;
    END IF;
    -- A claim counts as a heartbeat; writing it at most once a second keeps a
    -- busy worker from churning its row on every claim.
    IF w_state = 'starting' OR w_beat IS NULL OR w_beat < pg_catalog.now() - interval '1 second' THEN
        UPDATE pgwake.workers w SET state = 'alive', last_heartbeat = pg_catalog.now()
         WHERE w.id = claim.worker_id;
    END IF;
    -- n = 1, the common case, gets a constant LIMIT: a parameter there makes
    -- the cached generic plan look dear and PL/pgSQL would re-plan every call.
    -- LEAST ignores a null timeout_at (no task_timeout).
    IF claim.n = 1 THEN
        RETURN QUERY
        WITH picked AS (
            SELECT t.id FROM pgwake.tasks t
             WHERE t.stage = claim.stage AND t.status = 'pending' AND t.not_before <= pg_catalog.now()
             ORDER BY t.priority DESC, t.not_before, t.id
             LIMIT 1
               FOR UPDATE SKIP LOCKED)
        UPDATE pgwake.tasks t
           SET status = 'leased', attempts = t.attempts + 1, lease_owner = claim.worker_id,
               lease_interval = claim.lease, timeout_at = pg_catalog.now() + w_timeout,
               lease_until = LEAST(pg_catalog.now() + claim.lease, pg_catalog.now() + w_timeout),
               lease_token = pgwake.new_lease_token(), started_at = pg_catalog.now()
          FROM picked
         WHERE t.id = picked.id AND t.status = 'pending'
        RETURNING t.id, t.run_id, t.payload, t.attempts, t.lease_token;
        RETURN;
    END IF;
    RETURN QUERY
    WITH picked AS (
        SELECT t.id FROM pgwake.tasks t
         WHERE t.stage = claim.stage AND t.status = 'pending' AND t.not_before <= pg_catalog.now()
         ORDER BY t.priority DESC, t.not_before, t.id
         LIMIT GREATEST(claim.n, 0)
           FOR UPDATE SKIP LOCKED)
    UPDATE pgwake.tasks t
       SET status = 'leased', attempts = t.attempts + 1, lease_owner = claim.worker_id,
           lease_interval = claim.lease, timeout_at = pg_catalog.now() + w_timeout,
           lease_until = LEAST(pg_catalog.now() + claim.lease, pg_catalog.now() + w_timeout),
           lease_token = pgwake.new_lease_token(), started_at = pg_catalog.now()
      FROM picked
     WHERE t.id = picked.id AND t.status = 'pending'
    RETURNING t.id, t.run_id, t.payload, t.attempts, t.lease_token;
END $$;

CREATE OR REPLACE FUNCTION pgwake.fail(task_id bigint, lease_token bigint, error text, retry boolean DEFAULT true)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    new_status text;
    t_stage    text;
BEGIN
    UPDATE pgwake.tasks t
       SET status = CASE WHEN fail.retry AND t.attempts < t.max_attempts THEN 'pending' ELSE 'dead' END,
           not_before = CASE WHEN fail.retry AND t.attempts < t.max_attempts
                             THEN pg_catalog.now() + pgwake.retry_delay(t.attempts) ELSE t.not_before END,
           finished_at = CASE WHEN fail.retry AND t.attempts < t.max_attempts
                              THEN NULL ELSE pg_catalog.now() END,
           last_error = fail.error, lease_until = NULL, lease_owner = NULL
     WHERE t.id = fail.task_id AND t.status = 'leased' AND t.lease_token = fail.lease_token
    RETURNING t.status, t.stage INTO new_status, t_stage;
    IF new_status IS NULL THEN
        RETURN false;
    END IF;
    INSERT INTO pgwake.task_failures (task_id, stage) VALUES (fail.task_id, t_stage);
    IF new_status = 'pending' THEN
        PERFORM pg_catalog.pg_notify('pgwake_task', t_stage);
    END IF;
    RETURN true;
END $$;

CREATE OR REPLACE FUNCTION pgwake.prune(keep interval DEFAULT '7 days') RETURNS int
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n_tasks int; n_runs int; n_workers int; n_failures int;
    horizon timestamptz := pg_catalog.now() - prune.keep;
BEGIN
    -- Finished runs first (their tasks go with them), then stray done tasks.
    WITH r AS (
        DELETE FROM pgwake.runs r
         WHERE r.created_at < horizon
           AND NOT EXISTS (SELECT 1 FROM pgwake.tasks t
                            WHERE t.run_id = r.id
                              AND (t.status IN ('pending', 'leased') OR t.finished_at >= horizon))
        RETURNING 1)
    SELECT count(*) INTO n_runs FROM r;
    WITH t AS (
        DELETE FROM pgwake.tasks t WHERE t.status = 'done' AND t.finished_at < horizon RETURNING 1)
    SELECT count(*) INTO n_tasks FROM t;
    WITH w AS (
        DELETE FROM pgwake.workers w
         WHERE w.state IN ('exited', 'dead') AND w.ended_at < horizon RETURNING 1)
    SELECT count(*) INTO n_workers FROM w;
    WITH f AS (
        DELETE FROM pgwake.task_failures f WHERE f.failed_at < horizon RETURNING 1)
    SELECT count(*) INTO n_failures FROM f;
    RETURN n_tasks + n_runs + n_workers + n_failures;
END $$;
COMMENT ON FUNCTION pgwake.prune IS
    'deletes done tasks, finished runs, ended workers and failure records older than keep; returns rows deleted';

INSERT INTO pgwake.schema_migrations (version) VALUES (6);
