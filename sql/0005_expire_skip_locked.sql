-- 0005_expire_skip_locked: the expiry functions never wait on a task row that
-- another session holds. One locked row (an application transaction, a worker
-- stopped inside its own transaction after complete) used to hold up
-- expire_leases for every worker in the database, and pg_cron's job sets no
-- lock_timeout. Now expire_worker and expire_leases release what they can with
-- SKIP LOCKED; a skipped lease belongs to a worker that is no longer live, so
-- step 3 of a later expire_leases takes it, and step 4 asks for that call
-- within a second. release_worker and worker_exited still wait (bounded by the
-- daemon's lock_timeout and retried): their refund must not be lost to a later
-- release that counts the attempt.

DROP FUNCTION pgwake.release_leases(text, text, boolean);

CREATE FUNCTION pgwake.release_leases(worker_id text, reason text, refund boolean,
                                      skip_locked boolean DEFAULT false)
RETURNS TABLE (requeued int, dead int)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    ids       bigint[];
    n_pending int;
    n_dead    int;
    n_counted int;
    mem       boolean;  -- a refunded stop of a worker pgwake stopped above memory_limit
    free      bigint[]; -- with skip_locked: the leases no other session holds, locked now
BEGIN
    IF release_leases.skip_locked THEN
        SELECT array_agg(f.id) INTO free
          FROM (SELECT t.id FROM pgwake.tasks t
                 WHERE t.lease_owner = release_leases.worker_id AND t.status = 'leased'
                 ORDER BY t.id FOR UPDATE SKIP LOCKED) f;
    END IF;
    SELECT release_leases.refund AND w.memory_stop IS NOT NULL INTO mem
      FROM pgwake.workers w WHERE w.id = release_leases.worker_id;
    mem := COALESCE(mem, false);
    WITH picked AS (
        SELECT t.id, release_leases.refund AND (NOT mem OR t.memory_stops = 0) AS back
          FROM pgwake.tasks t
         WHERE t.lease_owner = release_leases.worker_id AND t.status = 'leased'
           AND (NOT release_leases.skip_locked OR t.id = ANY (free))
           FOR UPDATE),
    released AS (
        UPDATE pgwake.tasks t
           SET attempts = GREATEST(t.attempts - p.back::int, 0),
               status = CASE WHEN t.attempts - p.back::int >= t.max_attempts THEN 'dead' ELSE 'pending' END,
               finished_at = CASE WHEN t.attempts - p.back::int >= t.max_attempts THEN pg_catalog.now() END,
               not_before = pg_catalog.now(), releases = t.releases + 1,
               memory_stops = t.memory_stops + mem::int,
               last_error = 'worker ' || release_leases.worker_id || ': ' || release_leases.reason
                            || CASE WHEN mem AND p.back THEN ' (first memory_limit stop of this task: refunded)'
                                    WHEN mem THEN ' (memory_limit stop ' || t.memory_stops + 1
                                                  || ' of this task: attempt counted)'
                                    ELSE '' END,
               lease_owner = NULL, lease_until = NULL
          FROM picked p
         WHERE t.id = p.id AND t.lease_owner = release_leases.worker_id AND t.status = 'leased'
        RETURNING t.id, t.status, t.stage, p.back),
    notified AS (
        SELECT pg_catalog.pg_notify('pgwake_task', s.stage)
          FROM (SELECT DISTINCT r.stage FROM released r WHERE r.status = 'pending') s)
    SELECT array_agg(r.id ORDER BY r.id),
           (count(*) FILTER (WHERE r.status = 'pending'))::int,
           (count(*) FILTER (WHERE r.status = 'dead'))::int,
           (count(*) FILTER (WHERE NOT r.back))::int
      INTO ids, n_pending, n_dead, n_counted
      FROM released r
     WHERE (SELECT count(*) FROM notified) >= 0;
    IF ids IS NOT NULL THEN
        -- Callers hold this worker's row already (lock order: workers, then tasks).
        -- A memory stop that cost an attempt is a death to alert (unalerted_deaths).
        UPDATE pgwake.workers w SET released_tasks = COALESCE(w.released_tasks, '{}') || ids,
               reason = CASE WHEN mem AND n_counted > 0 THEN 'memory_limit again: ' || w.memory_stop
                             ELSE w.reason END
         WHERE w.id = release_leases.worker_id;
    END IF;
    RETURN QUERY SELECT n_pending, n_dead;
END $$;

CREATE OR REPLACE FUNCTION pgwake.expire_worker(worker_id text)
RETURNS TABLE (dead boolean, next_deadline_s float8)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    beat_at  timestamptz;
    task_at  timestamptz;
    w_state  text;
    epoch    timestamptz := pgwake.server_epoch();
    why      text;
    pass     int;
BEGIN
    -- A plain read first: a worker not yet due costs no lock, no WAL and no
    -- wait on its own heartbeat; only past the deadline is the row locked and
    -- the deadline read again.
    FOR pass IN 1..2 LOOP
        IF pass = 1 THEN
            SELECT w.state, GREATEST(COALESCE(w.last_heartbeat, w.started_at), epoch) + w.heartbeat_timeout
              INTO w_state, beat_at
              FROM pgwake.workers w WHERE w.id = expire_worker.worker_id;
        ELSE
            SELECT w.state, GREATEST(COALESCE(w.last_heartbeat, w.started_at), epoch) + w.heartbeat_timeout
              INTO w_state, beat_at
              FROM pgwake.workers w WHERE w.id = expire_worker.worker_id FOR UPDATE;
        END IF;
        IF w_state IS NULL OR w_state NOT IN ('starting', 'alive') THEN
            RETURN QUERY SELECT w_state = 'dead', NULL::float8;
            RETURN;
        END IF;
        SELECT min(t.timeout_at) INTO task_at FROM pgwake.tasks t
         WHERE t.lease_owner = expire_worker.worker_id AND t.status = 'leased';
        IF LEAST(beat_at, task_at) > pg_catalog.clock_timestamp() THEN
            RETURN QUERY SELECT false,
                extract(epoch FROM LEAST(beat_at, task_at) - pg_catalog.clock_timestamp())::float8;
            RETURN;
        END IF;
    END LOOP;
    why := CASE WHEN beat_at <= pg_catalog.clock_timestamp() THEN 'heartbeat timeout' ELSE 'task timeout' END;
    UPDATE pgwake.workers w SET state = 'dead', reason = why, ended_at = pg_catalog.now()
     WHERE w.id = expire_worker.worker_id;
    PERFORM pgwake.release_leases(expire_worker.worker_id, why, false, true);
    RETURN QUERY SELECT true, NULL::float8;
END $$;
COMMENT ON FUNCTION pgwake.expire_worker IS
    'reads a worker''s heartbeat and task_timeout deadlines fresh; past one, declares the worker dead and releases its leases in one call';

CREATE OR REPLACE FUNCTION pgwake.expire_leases()
RETURNS TABLE (released int, dead_workers text[], next_deadline_s float8)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    dead_ids text[];
    late_ids text[];
    wid      text;
    n_rel    int;
    next_at  timestamptz;
    epoch    timestamptz := pgwake.server_epoch();
BEGIN
    -- 1. Workers past their heartbeat deadline, never within heartbeat_timeout of a
    --    server start or a promotion (a restarted database must not kill every worker).
    WITH cand AS (
        SELECT w.id FROM pgwake.workers w
         WHERE w.state IN ('starting', 'alive')
           AND GREATEST(COALESCE(w.last_heartbeat, w.started_at), epoch)
               + w.heartbeat_timeout < pg_catalog.clock_timestamp()
         ORDER BY w.id FOR UPDATE SKIP LOCKED),
    declared AS (
        UPDATE pgwake.workers w SET state = 'dead', reason = 'heartbeat timeout', ended_at = pg_catalog.now()
          FROM cand
         WHERE w.id = cand.id AND w.state IN ('starting', 'alive')
           AND GREATEST(COALESCE(w.last_heartbeat, w.started_at), epoch)
               + w.heartbeat_timeout < pg_catalog.clock_timestamp()
        RETURNING w.id)
    SELECT array_agg(d.id ORDER BY d.id) INTO dead_ids FROM declared d;
    n_rel := 0;
    FOREACH wid IN ARRAY COALESCE(dead_ids, '{}'::text[]) LOOP
        SELECT n_rel + r.requeued + r.dead INTO n_rel
          FROM pgwake.release_leases(wid, 'heartbeat timeout', false, true) r;
    END LOOP;

    -- 2. Live workers holding a task past its timeout_at, heartbeats or not: stopped
    --    like hung ones (their daemon sees them dead), the attempt counted.
    WITH cand AS (
        SELECT w.id FROM pgwake.workers w
         WHERE w.state IN ('starting', 'alive')
           AND EXISTS (SELECT 1 FROM pgwake.tasks t
                        WHERE t.lease_owner = w.id AND t.status = 'leased'
                          AND t.timeout_at < pg_catalog.clock_timestamp())
         ORDER BY w.id FOR UPDATE SKIP LOCKED),
    declared AS (
        UPDATE pgwake.workers w SET state = 'dead', reason = 'task timeout', ended_at = pg_catalog.now()
          FROM cand
         WHERE w.id = cand.id AND w.state IN ('starting', 'alive')
        RETURNING w.id)
    SELECT array_agg(d.id ORDER BY d.id) INTO late_ids FROM declared d;
    FOREACH wid IN ARRAY COALESCE(late_ids, '{}'::text[]) LOOP
        SELECT n_rel + r.requeued + r.dead INTO n_rel
          FROM pgwake.release_leases(wid, 'task timeout', false, true) r;
    END LOOP;
    dead_ids := COALESCE(dead_ids, '{}'::text[]) || COALESCE(late_ids, '{}'::text[]);

    -- 3. Leases past lease_until (capped by timeout_at), or held by a worker that is not live.
    WITH cand AS (
        SELECT t.id FROM pgwake.tasks t
          LEFT JOIN pgwake.workers w ON w.id = t.lease_owner
         WHERE t.status = 'leased'
           AND (t.lease_until < pg_catalog.clock_timestamp() OR w.state IS NULL
                OR w.state NOT IN ('starting', 'alive'))
         ORDER BY t.id FOR UPDATE OF t SKIP LOCKED),
    rel AS (
        UPDATE pgwake.tasks t
           SET status = CASE WHEN t.attempts >= t.max_attempts THEN 'dead' ELSE 'pending' END,
               finished_at = CASE WHEN t.attempts >= t.max_attempts THEN pg_catalog.now() END,
               not_before = pg_catalog.now(), releases = t.releases + 1,
               last_error = CASE WHEN t.timeout_at < pg_catalog.clock_timestamp()
                                 THEN 'task timeout: lease of ' || COALESCE(t.lease_owner, '?') || ' cut off'
                                 ELSE 'lease of ' || COALESCE(t.lease_owner, '?') || ' expired' END,
               lease_owner = NULL, lease_until = NULL
          FROM cand
         WHERE t.id = cand.id AND t.status = 'leased'
           AND (t.lease_until < pg_catalog.clock_timestamp()
                OR NOT EXISTS (SELECT 1 FROM pgwake.workers w2
                                WHERE w2.id = t.lease_owner AND w2.state IN ('starting', 'alive')))
        RETURNING t.status, t.stage),
    notified AS (
        SELECT pg_catalog.pg_notify('pgwake_task', s.stage)
          FROM (SELECT DISTINCT r.stage FROM rel r WHERE r.status = 'pending') s)
    SELECT n_rel + count(*) INTO n_rel FROM rel WHERE (SELECT count(*) FROM notified) >= 0;

    -- 4. The next deadline anyone should act on (lease_until is never past timeout_at).
    --    A lease of a worker that is no longer live was skipped while another
    --    session held its row: try again in a second.
    SELECT LEAST(
        (SELECT min(GREATEST(COALESCE(w.last_heartbeat, w.started_at), epoch) + w.heartbeat_timeout)
           FROM pgwake.workers w WHERE w.state IN ('starting', 'alive')),
        (SELECT min(t.lease_until) FROM pgwake.tasks t WHERE t.status = 'leased'),
        (SELECT pg_catalog.clock_timestamp() + interval '1 second'
           FROM pgwake.tasks t JOIN pgwake.workers w ON w.id = t.lease_owner
          WHERE t.status = 'leased' AND w.state NOT IN ('starting', 'alive') LIMIT 1))
      INTO next_at;

    RETURN QUERY SELECT n_rel, COALESCE((SELECT array_agg(x ORDER BY x) FROM unnest(dead_ids) x), '{}'::text[]),
        CASE WHEN next_at IS NOT NULL
             THEN GREATEST(extract(epoch FROM next_at - pg_catalog.clock_timestamp())::float8, 0) END;
END $$;
COMMENT ON FUNCTION pgwake.expire_leases IS
    'declares dead the workers past their heartbeat deadline or holding a task past timeout_at, releases expired leases and those of dead workers, and returns the seconds to the next deadline; safe to run concurrently (pg_cron backstop)';

