-- 0002_trust: least privilege (the NOLOGIN role pgwake_worker, a SECURITY
-- DEFINER worker API with a pinned search_path, nothing public), random lease
-- tokens, task_timeout (timeout_at caps a lease), memory_limit stops refunded
-- once per task, and server_epoch(): no death declared within
-- heartbeat_timeout of a server start or of a promotion (a new WAL timeline).
-- Plain SQL: `psql -1 -f` applies it too. Lock order unchanged: a workers row
-- before any tasks row.

-- ---------------------------------------------------------------- columns

ALTER TABLE pgwake.tasks
    ADD COLUMN timeout_at   timestamptz,                -- claim time + task_timeout: caps the lease
    ADD COLUMN memory_stops int NOT NULL DEFAULT 0;     -- leases of it ended by memory_limit
COMMENT ON COLUMN pgwake.tasks.timeout_at IS
    'claim time + the stage''s task_timeout (null without one): heartbeats never extend the lease past it';
COMMENT ON COLUMN pgwake.tasks.memory_stops IS
    'times a worker holding it was stopped above memory_limit: the first is refunded, later ones count';

ALTER TABLE pgwake.workers
    ADD COLUMN task_timeout interval,   -- its stage's task_timeout, set by its daemon; null = none
    ADD COLUMN memory_stop  text;       -- set when its daemon stopped it above memory_limit

-- Tokens are random now (claim); nothing draws from the sequence any more.
DROP SEQUENCE pgwake.lease_token_seq;

-- ---------------------------------------------------------------- server epoch

-- When this database first saw each WAL timeline. A promotion starts a new
-- timeline, so a promoted standby that has run for days still gets a fresh
-- epoch. The timeline current at migration time is as old as the server.
CREATE TABLE pgwake.timelines (
    timeline   bigint PRIMARY KEY,
    first_seen timestamptz NOT NULL
);
INSERT INTO pgwake.timelines (timeline, first_seen)
VALUES (('x' || pg_catalog.left(pg_catalog.pg_walfile_name(pg_catalog.pg_current_wal_lsn()), 8))::bit(32)::bigint,
        '-infinity');

CREATE FUNCTION pgwake.server_epoch() RETURNS timestamptz
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    tl   bigint;
    seen timestamptz;
BEGIN
    -- The first 8 hex digits of a WAL file name are the current timeline
    -- (pg_control_checkpoint() would say it too, but only to superusers).
    tl := ('x' || pg_catalog.left(pg_catalog.pg_walfile_name(pg_catalog.pg_current_wal_lsn()), 8))::bit(32)::bigint;
    SELECT t.first_seen INTO seen FROM pgwake.timelines t WHERE t.timeline = tl;
    IF NOT FOUND THEN
        INSERT INTO pgwake.timelines (timeline, first_seen) VALUES (tl, pg_catalog.now())
            ON CONFLICT DO NOTHING;
        SELECT t.first_seen INTO seen FROM pgwake.timelines t WHERE t.timeline = tl;
    END IF;
    RETURN GREATEST(pg_catalog.pg_postmaster_start_time(), COALESCE(seen, pg_catalog.now()));
END $$;
COMMENT ON FUNCTION pgwake.server_epoch IS
    'the later of the postmaster''s start and the first time this database saw its current WAL timeline (a promotion): no worker is declared dead within heartbeat_timeout of it';

-- ---------------------------------------------------------------- tokens, task_timeout

-- No SET search_path here, unlike every other function: claim calls it per
-- row, and a function-level SET makes PostgreSQL re-plan claim's statements
-- on every call (measured: +0.1 ms per claim). Every name is qualified instead.
CREATE FUNCTION pgwake.new_lease_token() RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    h text := pg_catalog.replace(pg_catalog.gen_random_uuid()::pg_catalog.text, '-', '');
BEGIN
    -- 63 random bits of a version-4 UUID (the strong RNG): hex digit 1 less its
    -- top bit, and digits 18..32 (after the version and variant digits).
    RETURN ('x' OPERATOR(pg_catalog.||) pg_catalog.substr(h, 1, 1)
                OPERATOR(pg_catalog.||) pg_catalog.substr(h, 18, 15))::pg_catalog.bit(64)::pg_catalog.int8
           OPERATOR(pg_catalog.&) 9223372036854775807;
END $$;
COMMENT ON FUNCTION pgwake.new_lease_token IS 'a random, unguessable 63-bit lease token';

CREATE FUNCTION pgwake.set_task_timeout(worker_id text, task_timeout interval) RETURNS text
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    UPDATE pgwake.workers w
       SET task_timeout = CASE WHEN set_task_timeout.task_timeout > interval '0' THEN set_task_timeout.task_timeout END
     WHERE w.id = set_task_timeout.worker_id;
    SELECT set_task_timeout.worker_id
$$;
COMMENT ON FUNCTION pgwake.set_task_timeout(text, interval) IS
    'sets a worker''s task_timeout (0 or null = none) and returns its id, so it wraps register_worker: set_task_timeout(register_worker(...), t)';

CREATE FUNCTION pgwake.set_task_timeout(stage text, host text, task_timeout interval) RETURNS int
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    WITH u AS (
        UPDATE pgwake.workers w
           SET task_timeout = CASE WHEN set_task_timeout.task_timeout > interval '0' THEN set_task_timeout.task_timeout END
         WHERE w.stage = set_task_timeout.stage AND w.host = set_task_timeout.host
           AND w.state IN ('starting', 'alive')
        RETURNING 1)
    SELECT count(*)::int FROM u
$$;
COMMENT ON FUNCTION pgwake.set_task_timeout(text, text, interval) IS
    'a reload: the live workers of a stage on a host take the new task_timeout for their next claims; returns how many';

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
               lease_token = pgwake.new_lease_token()
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
           lease_token = pgwake.new_lease_token()
      FROM picked
     WHERE t.id = picked.id AND t.status = 'pending'
    RETURNING t.id, t.run_id, t.payload, t.attempts, t.lease_token;
END $$;

CREATE OR REPLACE FUNCTION pgwake.heartbeat(worker_id text) RETURNS int
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    w_state text;
    held    int;
BEGIN
    SELECT w.state INTO w_state FROM pgwake.workers w WHERE w.id = heartbeat.worker_id
       FOR NO KEY UPDATE;
    IF w_state IS NULL OR w_state NOT IN ('starting', 'alive') THEN
        RETURN -1;
    END IF;
    UPDATE pgwake.workers w SET state = 'alive', last_heartbeat = pg_catalog.now()
     WHERE w.id = heartbeat.worker_id;
    -- Never past timeout_at: a heartbeat thread cannot keep a stuck task forever.
    WITH extended AS (
        UPDATE pgwake.tasks t SET lease_until = LEAST(pg_catalog.now() + t.lease_interval, t.timeout_at)
         WHERE t.lease_owner = heartbeat.worker_id AND t.status = 'leased'
        RETURNING 1)
    SELECT count(*) INTO held FROM extended;
    RETURN held;
END $$;

-- ---------------------------------------------------------------- memory_limit stops

CREATE FUNCTION pgwake.memory_stop(worker_id text, why text) RETURNS boolean
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    UPDATE pgwake.workers w SET memory_stop = memory_stop.why
     WHERE w.id = memory_stop.worker_id AND w.state IN ('starting', 'alive')
    RETURNING true
$$;
COMMENT ON FUNCTION pgwake.memory_stop IS
    'records that the daemon stops this worker above memory_limit: its release refunds each task''s first such stop only';

-- release_leases: as in 0001, except after a memory_limit stop a refund is
-- given only for a task's first such stop, so a task that always blows the
-- limit ends dead instead of looping.
CREATE OR REPLACE FUNCTION pgwake.release_leases(worker_id text, reason text, refund boolean)
RETURNS TABLE (requeued int, dead int)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    ids       bigint[];
    n_pending int;
    n_dead    int;
    n_counted int;
    mem       boolean;  -- a refunded stop of a worker pgwake stopped above memory_limit
BEGIN
    SELECT release_leases.refund AND w.memory_stop IS NOT NULL INTO mem
      FROM pgwake.workers w WHERE w.id = release_leases.worker_id;
    mem := COALESCE(mem, false);
    WITH picked AS (
        SELECT t.id, release_leases.refund AND (NOT mem OR t.memory_stops = 0) AS back
          FROM pgwake.tasks t
         WHERE t.lease_owner = release_leases.worker_id AND t.status = 'leased'
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

CREATE OR REPLACE FUNCTION pgwake.release_worker(worker_id text, reason text, refund boolean DEFAULT false)
RETURNS TABLE (requeued int, dead int)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE pgwake.workers w
       SET state = 'dead', ended_at = pg_catalog.now(),
           reason = CASE WHEN w.memory_stop IS NOT NULL
                         THEN 'memory_limit: ' || w.memory_stop || ' (' || release_worker.reason || ')'
                         ELSE release_worker.reason END
     WHERE w.id = release_worker.worker_id AND w.state IN ('starting', 'alive');
    -- A new statement, a new snapshot: a claim that held the worker row has
    -- committed by now, and its lease is released here.
    RETURN QUERY SELECT * FROM pgwake.release_leases(release_worker.worker_id, release_worker.reason,
                                                     release_worker.refund);
END $$;

-- ---------------------------------------------------------------- expiry

-- expire_worker: as in 0001, with server_epoch() for the start guard and the
-- earliest timeout_at of its leases as a second deadline (reason task timeout).
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
    PERFORM pgwake.release_leases(expire_worker.worker_id, why, false);
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
          FROM pgwake.release_leases(wid, 'heartbeat timeout', false) r;
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
          FROM pgwake.release_leases(wid, 'task timeout', false) r;
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
    SELECT LEAST(
        (SELECT min(GREATEST(COALESCE(w.last_heartbeat, w.started_at), epoch) + w.heartbeat_timeout)
           FROM pgwake.workers w WHERE w.state IN ('starting', 'alive')),
        (SELECT min(t.lease_until) FROM pgwake.tasks t WHERE t.status = 'leased'))
      INTO next_at;

    RETURN QUERY SELECT n_rel, COALESCE((SELECT array_agg(x ORDER BY x) FROM unnest(dead_ids) x), '{}'::text[]),
        CASE WHEN next_at IS NOT NULL
             THEN GREATEST(extract(epoch FROM next_at - pg_catalog.clock_timestamp())::float8, 0) END;
END $$;
COMMENT ON FUNCTION pgwake.expire_leases IS
    'declares dead the workers past their heartbeat deadline or holding a task past timeout_at, releases expired leases and those of dead workers, and returns the seconds to the next deadline; safe to run concurrently (pg_cron backstop)';

-- Deaths the maintenance holder alerts for whoever declared them (pg_cron,
-- another daemon): missed heartbeats, task timeouts, memory stops that cost an attempt.
CREATE OR REPLACE FUNCTION pgwake.unalerted_deaths(lim int DEFAULT 100) RETURNS SETOF text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT w.id FROM pgwake.workers w
     WHERE w.state = 'dead' AND w.alerted_at IS NULL
       AND (w.reason IN ('heartbeat timeout', 'task timeout') OR w.reason LIKE 'memory\_limit again: %')
     ORDER BY w.ended_at LIMIT unalerted_deaths.lim
$$;
COMMENT ON FUNCTION pgwake.unalerted_deaths IS
    'workers declared dead for a missed heartbeat, a task timeout or a repeated memory_limit stop, whose death nobody alerted yet';

-- A worker may only learn how a lease of its own ended: with the token.
CREATE FUNCTION pgwake.lease_outcome(task_id bigint, lease_token bigint)
RETURNS TABLE (status text, last_error text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT t.status, t.last_error FROM pgwake.tasks t
     WHERE t.id = lease_outcome.task_id AND t.lease_token = lease_outcome.lease_token
$$;
COMMENT ON FUNCTION pgwake.lease_outcome IS
    'the status and last_error of a task, only for the holder of its lease token (a worker whose complete/fail acknowledgement was lost)';

-- ---------------------------------------------------------------- privileges

-- The worker API runs with the schema owner's rights: a worker role needs no
-- privilege on any table. Every search_path is pinned (pg_temp last) and every
-- name in the bodies is schema-qualified; none builds SQL from its arguments.
ALTER FUNCTION pgwake.enqueue(text, jsonb, bigint, int, timestamptz, int) SECURITY DEFINER;
ALTER FUNCTION pgwake.register_worker(text, text, int, interval, int) SECURITY DEFINER;
ALTER FUNCTION pgwake.complete(bigint, bigint, jsonb) SECURITY DEFINER;
ALTER FUNCTION pgwake.fail(bigint, bigint, text, boolean) SECURITY DEFINER;
ALTER FUNCTION pgwake.worker_exited(text) SECURITY DEFINER;
-- A run's first task is inserted with the owner's rights: a role allowed to
-- INSERT INTO pgwake.runs needs no privilege on pgwake.tasks.
ALTER FUNCTION pgwake.runs_start() SECURITY DEFINER;

CREATE FUNCTION pgwake.apply_privileges() RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET client_min_messages = warning AS $$
BEGIN
    -- Nothing in the schema is public; later migrations' functions neither,
    -- since `pgwake migrate` runs this after every migration.
    REVOKE ALL ON SCHEMA pgwake FROM PUBLIC;
    REVOKE ALL ON ALL TABLES IN SCHEMA pgwake FROM PUBLIC;
    REVOKE ALL ON ALL SEQUENCES IN SCHEMA pgwake FROM PUBLIC;
    REVOKE ALL ON ALL FUNCTIONS IN SCHEMA pgwake FROM PUBLIC;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'pgwake_worker') THEN
        IF NOT (SELECT r.rolsuper OR r.rolcreaterole FROM pg_catalog.pg_roles r
                 WHERE r.rolname = current_user) THEN
            RETURN 'role pgwake_worker does not exist and role ' || pg_catalog.quote_ident(current_user)
                || ' may not create roles; as a superuser run: CREATE ROLE pgwake_worker NOLOGIN;'
                || ' then run `pgwake migrate` again to grant it the worker API';
        END IF;
        BEGIN
            CREATE ROLE pgwake_worker NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL; -- another database's migration made it just now
        END;
    END IF;
    GRANT USAGE ON SCHEMA pgwake TO pgwake_worker;
    GRANT EXECUTE ON FUNCTION
        pgwake.enqueue(text, jsonb, bigint, int, timestamptz, int),
        pgwake.register_worker(text, text, int, interval, int),
        pgwake.claim(text, text, interval, int),
        pgwake.heartbeat(text),
        pgwake.complete(bigint, bigint, jsonb),
        pgwake.fail(bigint, bigint, text, boolean),
        pgwake.worker_exited(text),
        pgwake.lease_outcome(bigint, bigint)
        TO pgwake_worker;
    GRANT SELECT ON pgwake.v_workers, pgwake.v_dead_workers, pgwake.v_stage_stats, pgwake.v_runs
        TO pgwake_worker;
    RETURN NULL;
END $$;
COMMENT ON FUNCTION pgwake.apply_privileges IS
    'makes nothing in schema pgwake public and grants role pgwake_worker (created when allowed) the worker API and the views; NULL when done, else what to run';

-- `pgwake migrate` runs it again after every migration and prints what it
-- returns (the CREATE ROLE to run when this role may not create roles);
-- after `psql -1 -f`, run SELECT pgwake.apply_privileges() to see it.
SELECT pgwake.apply_privileges() IS NULL AS worker_role_granted;

INSERT INTO pgwake.schema_migrations (version) VALUES (2);
