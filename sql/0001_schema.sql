-- 0001_schema: the pgwake core schema: runs, tasks, workers, stage state, the
-- task-queue functions (claim, heartbeat, complete, fail, release, expire), the
-- NOTIFY triggers of the channels pgwake_run / pgwake_task / pgwake_heartbeat /
-- pgwake_wake, and the views operators read. Plain SQL: `psql -1 -f` applies it too.
-- Lock order in every function: a workers row before any tasks row.

CREATE SCHEMA pgwake;
COMMENT ON SCHEMA pgwake IS 'pgwake: PostgreSQL-driven worker supervision and task queue';

CREATE TABLE pgwake.schema_migrations (
    version    int PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);

-- Stage names are identifiers in logs, file names and payloads: keep them tame.
CREATE DOMAIN pgwake.stage_name AS text
    CHECK (VALUE OPERATOR(pg_catalog.~) '^[a-z0-9_][a-z0-9_.-]{0,62}$');

CREATE TABLE pgwake.runs (
    id         bigserial PRIMARY KEY,
    stage      pgwake.stage_name NOT NULL,
    params     jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);

CREATE SEQUENCE pgwake.lease_token_seq;

CREATE TABLE pgwake.tasks (
    id             bigserial PRIMARY KEY,
    run_id         bigint REFERENCES pgwake.runs (id) ON DELETE CASCADE,
    stage          pgwake.stage_name NOT NULL,
    payload        jsonb NOT NULL DEFAULT '{}',
    status         text NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending', 'leased', 'done', 'dead')),
    priority       int NOT NULL DEFAULT 0,
    attempts       int NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts   int NOT NULL DEFAULT 5 CHECK (max_attempts >= 1),
    not_before     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    lease_owner    text,
    lease_until    timestamptz,
    lease_interval interval,
    lease_token    bigint,
    releases       int NOT NULL DEFAULT 0,   -- leases taken back from a dead or stopped worker
    last_error     text,
    result         jsonb,
    created_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    finished_at    timestamptz
);
-- Every claim and completion leaves a dead index entry where the next claim
-- looks first; vacuum on a fixed count of dead rows, not on 20 % of a table
-- that holds millions of done tasks (operators: autovacuum_naptime <= 10s).
ALTER TABLE pgwake.tasks SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 10000,
                              autovacuum_vacuum_cost_delay = 0, autovacuum_analyze_scale_factor = 0,
                              autovacuum_analyze_threshold = 50000);

COMMENT ON COLUMN pgwake.tasks.releases IS
    'times a lease on this task was taken back (worker died, hung or was stopped): each is a re-execution';

-- Claims and recounts touch only pending rows, so millions of done rows cost nothing.
CREATE INDEX tasks_claim_idx ON pgwake.tasks (stage, priority DESC, not_before, id)
    WHERE status = 'pending';
CREATE INDEX tasks_pending_due_idx ON pgwake.tasks (stage, not_before)
    WHERE status = 'pending';
CREATE INDEX tasks_leased_owner_idx ON pgwake.tasks (lease_owner) WHERE status = 'leased';
CREATE INDEX tasks_leased_until_idx ON pgwake.tasks (lease_until) WHERE status = 'leased';
CREATE INDEX tasks_run_idx ON pgwake.tasks (run_id);
CREATE INDEX tasks_finished_idx ON pgwake.tasks (finished_at) WHERE status = 'done';

CREATE SEQUENCE pgwake.worker_id_seq;

CREATE TABLE pgwake.workers (
    id                text PRIMARY KEY,
    stage             pgwake.stage_name NOT NULL,
    host              text NOT NULL,
    pid               int,
    pid_start         bigint,     -- /proc start time of pid, so a recycled pid is never killed
    state             text NOT NULL DEFAULT 'starting'
                      CHECK (state IN ('starting', 'alive', 'exited', 'dead')),
    reason            text,
    heartbeat_timeout interval NOT NULL DEFAULT '90 seconds',
    started_at        timestamptz NOT NULL DEFAULT pg_catalog.now(),
    last_heartbeat    timestamptz,
    ended_at          timestamptz,
    alerted_at        timestamptz,  -- set by whoever alerted its death: each is alerted once
    released_tasks    bigint[]      -- the tasks whose leases were taken back from it
);
CREATE INDEX workers_live_idx ON pgwake.workers (host, stage)
    WHERE state IN ('starting', 'alive');
CREATE INDEX workers_unalerted_idx ON pgwake.workers (ended_at)
    WHERE state = 'dead' AND alerted_at IS NULL;

CREATE TABLE pgwake.stage_state (
    stage      pgwake.stage_name NOT NULL,
    host       text NOT NULL,
    state      text NOT NULL CHECK (state IN ('running', 'fatal', 'stopped')),
    reason     text,
    since      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (stage, host)
);

-- ---------------------------------------------------------------- triggers

CREATE FUNCTION pgwake.tasks_notify() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- Statement level: one NOTIFY per statement and stage, for INSERT ... SELECT and COPY too.
    PERFORM pg_catalog.pg_notify('pgwake_task', s.stage)
       FROM (SELECT DISTINCT n.stage FROM new_rows n WHERE n.status = 'pending') s;
    RETURN NULL;
END $$;

CREATE TRIGGER tasks_notify AFTER INSERT ON pgwake.tasks
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION pgwake.tasks_notify();

CREATE FUNCTION pgwake.runs_start() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO pgwake.tasks (run_id, stage, payload) VALUES (NEW.id, NEW.stage, NEW.params);
    PERFORM pg_catalog.pg_notify('pgwake_run', NEW.stage || ' ' || NEW.id);
    RETURN NULL;
END $$;

CREATE TRIGGER runs_start AFTER INSERT ON pgwake.runs
    FOR EACH ROW EXECUTE FUNCTION pgwake.runs_start();

CREATE FUNCTION pgwake.workers_notify() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM pg_catalog.pg_notify('pgwake_heartbeat', NEW.id || ' ' || NEW.state);
    RETURN NULL;
END $$;

-- Registered, exited, dead: state changes only; a plain heartbeat stays silent.
CREATE TRIGGER workers_registered AFTER INSERT ON pgwake.workers
    FOR EACH ROW EXECUTE FUNCTION pgwake.workers_notify();
CREATE TRIGGER workers_ended AFTER UPDATE OF state ON pgwake.workers
    FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state AND NEW.state IN ('exited', 'dead'))
    EXECUTE FUNCTION pgwake.workers_notify();

-- ---------------------------------------------------------------- enqueue, register

CREATE FUNCTION pgwake.enqueue(stage text, payload jsonb DEFAULT '{}', run_id bigint DEFAULT NULL,
                               priority int DEFAULT 0, not_before timestamptz DEFAULT pg_catalog.now(),
                               max_attempts int DEFAULT 5)
RETURNS bigint
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    INSERT INTO pgwake.tasks (stage, payload, run_id, priority, not_before, max_attempts)
    VALUES (enqueue.stage, COALESCE(enqueue.payload, '{}'), enqueue.run_id, enqueue.priority,
            COALESCE(enqueue.not_before, pg_catalog.now()), enqueue.max_attempts)
    RETURNING id
$$;
COMMENT ON FUNCTION pgwake.enqueue IS 'adds a task (a convenience over INSERT INTO pgwake.tasks); returns its id';

CREATE FUNCTION pgwake.register_worker(stage text, host text, pid int DEFAULT NULL,
                                       heartbeat_timeout interval DEFAULT '90 seconds',
                                       max_total int DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    wid text;
BEGIN
    IF register_worker.max_total IS NOT NULL AND register_worker.max_total > 0 THEN
        -- Serialize registrations of one stage so the cap holds across daemons.
        PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('pgwake.stage:' || register_worker.stage, 0));
        IF (SELECT count(*) FROM pgwake.workers w
             WHERE w.stage = register_worker.stage AND w.state IN ('starting', 'alive'))
           >= register_worker.max_total THEN
            RETURN NULL;
        END IF;
    END IF;
    wid := register_worker.stage || '.' || nextval('pgwake.worker_id_seq');
    INSERT INTO pgwake.workers (id, stage, host, pid, heartbeat_timeout)
    VALUES (wid, register_worker.stage, register_worker.host, register_worker.pid,
            register_worker.heartbeat_timeout);
    RETURN wid;
END $$;
COMMENT ON FUNCTION pgwake.register_worker IS
    'registers a worker (state starting) and returns its id; NULL when max_total live workers of the stage already exist';

CREATE FUNCTION pgwake.set_worker_pid(worker_id text, pid int, pid_start bigint DEFAULT NULL)
RETURNS boolean
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    UPDATE pgwake.workers w SET pid = set_worker_pid.pid, pid_start = set_worker_pid.pid_start
     WHERE w.id = set_worker_pid.worker_id
    RETURNING true
$$;
COMMENT ON FUNCTION pgwake.set_worker_pid IS 'records the OS pid of a worker registered before its fork';

-- ---------------------------------------------------------------- claim, heartbeat

CREATE FUNCTION pgwake.claim(stage text, worker_id text, lease interval DEFAULT '5 minutes',
                             n int DEFAULT 1)
RETURNS TABLE (id bigint, run_id bigint, payload jsonb, attempts int, lease_token bigint)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    w_state text;
    w_beat  timestamptz;
BEGIN
    -- The row lock waits for a release_worker in flight and then sees its
    -- verdict. FOR NO KEY UPDATE, not FOR SHARE: this transaction may update the
    -- row next, and two share-lockers upgrading at once (a claim and the same
    -- worker's heartbeat) would deadlock.
    SELECT w.state, w.last_heartbeat INTO w_state, w_beat
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
               lease_interval = claim.lease, lease_until = pg_catalog.now() + claim.lease,
               lease_token = nextval('pgwake.lease_token_seq')
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
           lease_interval = claim.lease, lease_until = pg_catalog.now() + claim.lease,
           lease_token = nextval('pgwake.lease_token_seq')
      FROM picked
     WHERE t.id = picked.id AND t.status = 'pending'
    RETURNING t.id, t.run_id, t.payload, t.attempts, t.lease_token;
END $$;
COMMENT ON FUNCTION pgwake.claim IS
    'leases up to n claimable tasks of a stage to a live worker (priority DESC, not_before, id); counts as a heartbeat';

CREATE FUNCTION pgwake.heartbeat(worker_id text) RETURNS int
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
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
    WITH extended AS (
        UPDATE pgwake.tasks t SET lease_until = pg_catalog.now() + t.lease_interval
         WHERE t.lease_owner = heartbeat.worker_id AND t.status = 'leased'
        RETURNING 1)
    SELECT count(*) INTO held FROM extended;
    RETURN held;
END $$;
COMMENT ON FUNCTION pgwake.heartbeat IS
    'refreshes a worker and extends its leases; returns leases held, or -1 when the worker must stop (unknown, exited or dead)';

-- ---------------------------------------------------------------- complete, fail

CREATE FUNCTION pgwake.complete(task_id bigint, lease_token bigint, result jsonb DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- PL/pgSQL, not SQL: its plan is cached; a SQL function with a
    -- data-modifying statement is planned again on every call.
    UPDATE pgwake.tasks t
       SET status = 'done', result = complete.result, finished_at = pg_catalog.now(),
           lease_until = NULL
     WHERE t.id = complete.task_id AND t.status = 'leased' AND t.lease_token = complete.lease_token;
    RETURN FOUND;
END $$;
COMMENT ON FUNCTION pgwake.complete IS
    'marks a task done if it is still leased with this token (fencing); false changes nothing';

CREATE FUNCTION pgwake.retry_delay(attempts int) RETURNS interval
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT LEAST(interval '1 second' * power(2, GREATEST(retry_delay.attempts - 1, 0)),
                 interval '10 minutes')
$$;
COMMENT ON FUNCTION pgwake.retry_delay IS 'backoff before a failed task is claimable again: 1 s doubling to 10 min';

CREATE FUNCTION pgwake.fail(task_id bigint, lease_token bigint, error text, retry boolean DEFAULT true)
RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
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
    IF new_status = 'pending' THEN
        PERFORM pg_catalog.pg_notify('pgwake_task', t_stage);
    END IF;
    RETURN true;
END $$;
COMMENT ON FUNCTION pgwake.fail IS
    'fails a leased task (fencing by token): pending with backoff while attempts remain and retry is set, else dead';

-- ---------------------------------------------------------------- releasing leases

-- release_leases returns a worker's leased tasks to pending (dead when no attempt
-- is left); internal, called once the worker row is settled.
CREATE FUNCTION pgwake.release_leases(worker_id text, reason text, refund boolean)
RETURNS TABLE (requeued int, dead int)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    ids bigint[];
    n_pending int;
    n_dead int;
BEGIN
    WITH released AS (
        UPDATE pgwake.tasks t
           SET attempts = CASE WHEN release_leases.refund THEN GREATEST(t.attempts - 1, 0) ELSE t.attempts END,
               status = CASE WHEN (CASE WHEN release_leases.refund THEN t.attempts - 1 ELSE t.attempts END)
                                  >= t.max_attempts THEN 'dead' ELSE 'pending' END,
               finished_at = CASE WHEN (CASE WHEN release_leases.refund THEN t.attempts - 1 ELSE t.attempts END)
                                  >= t.max_attempts THEN pg_catalog.now() END,
               not_before = pg_catalog.now(), releases = t.releases + 1,
               last_error = 'worker ' || release_leases.worker_id || ': ' || release_leases.reason,
               lease_owner = NULL, lease_until = NULL
         WHERE t.lease_owner = release_leases.worker_id AND t.status = 'leased'
        RETURNING t.id, t.status, t.stage),
    notified AS (
        SELECT pg_catalog.pg_notify('pgwake_task', s.stage)
          FROM (SELECT DISTINCT r.stage FROM released r WHERE r.status = 'pending') s)
    SELECT array_agg(r.id ORDER BY r.id),
           (count(*) FILTER (WHERE r.status = 'pending'))::int,
           (count(*) FILTER (WHERE r.status = 'dead'))::int
      INTO ids, n_pending, n_dead
      FROM released r
     WHERE (SELECT count(*) FROM notified) >= 0;
    IF ids IS NOT NULL THEN
        -- Callers hold this worker's row already (lock order: workers, then tasks).
        UPDATE pgwake.workers w SET released_tasks = COALESCE(w.released_tasks, '{}') || ids
         WHERE w.id = release_leases.worker_id;
    END IF;
    RETURN QUERY SELECT n_pending, n_dead;
END $$;

CREATE FUNCTION pgwake.release_worker(worker_id text, reason text, refund boolean DEFAULT false)
RETURNS TABLE (requeued int, dead int)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE pgwake.workers w
       SET state = 'dead', reason = release_worker.reason, ended_at = pg_catalog.now()
     WHERE w.id = release_worker.worker_id AND w.state IN ('starting', 'alive');
    -- A new statement, a new snapshot: a claim that held the worker row has
    -- committed by now, and its lease is released here.
    RETURN QUERY SELECT * FROM pgwake.release_leases(release_worker.worker_id, release_worker.reason,
                                                     release_worker.refund);
END $$;
COMMENT ON FUNCTION pgwake.release_worker IS
    'declares a worker dead, then returns its leased tasks to pending (dead when out of attempts; refund gives the attempt back)';

CREATE FUNCTION pgwake.worker_exited(worker_id text) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    ended boolean;
BEGIN
    UPDATE pgwake.workers w SET state = 'exited', ended_at = pg_catalog.now()
     WHERE w.id = worker_exited.worker_id AND w.state IN ('starting', 'alive')
    RETURNING true INTO ended;
    PERFORM pgwake.release_leases(worker_exited.worker_id, 'exited holding a lease', false);
    RETURN COALESCE(ended, false);
END $$;
COMMENT ON FUNCTION pgwake.worker_exited IS 'records a normal end of a worker, releasing anything it still held';

CREATE FUNCTION pgwake.expire_worker(worker_id text)
RETURNS TABLE (dead boolean, next_deadline_s float8)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    deadline timestamptz;
    w_state  text;
    pass     int;
BEGIN
    -- A plain read first: a worker not yet due costs no lock, no WAL and no
    -- wait on its own heartbeat; only past the deadline is the row locked and
    -- the deadline read again.
    FOR pass IN 1..2 LOOP
        IF pass = 1 THEN
            SELECT w.state, GREATEST(COALESCE(w.last_heartbeat, w.started_at),
                                     pg_catalog.pg_postmaster_start_time()) + w.heartbeat_timeout
              INTO w_state, deadline
              FROM pgwake.workers w WHERE w.id = expire_worker.worker_id;
        ELSE
            SELECT w.state, GREATEST(COALESCE(w.last_heartbeat, w.started_at),
                                     pg_catalog.pg_postmaster_start_time()) + w.heartbeat_timeout
              INTO w_state, deadline
              FROM pgwake.workers w WHERE w.id = expire_worker.worker_id FOR UPDATE;
        END IF;
        IF w_state IS NULL OR w_state NOT IN ('starting', 'alive') THEN
            RETURN QUERY SELECT w_state = 'dead', NULL::float8;
            RETURN;
        END IF;
        IF deadline > pg_catalog.clock_timestamp() THEN
            RETURN QUERY SELECT false, extract(epoch FROM deadline - pg_catalog.clock_timestamp())::float8;
            RETURN;
        END IF;
    END LOOP;
    UPDATE pgwake.workers w SET state = 'dead', reason = 'heartbeat timeout', ended_at = pg_catalog.now()
     WHERE w.id = expire_worker.worker_id;
    PERFORM pgwake.release_leases(expire_worker.worker_id, 'heartbeat timeout', false);
    RETURN QUERY SELECT true, NULL::float8;
END $$;
COMMENT ON FUNCTION pgwake.expire_worker IS
    'reads a worker''s heartbeat deadline fresh; past it, declares the worker dead and releases its leases in one call';

CREATE FUNCTION pgwake.expire_leases()
RETURNS TABLE (released int, dead_workers text[], next_deadline_s float8)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    dead_ids text[];
    wid      text;
    n_rel    int;
    next_at  timestamptz;
BEGIN
    -- 1. Workers past their heartbeat deadline, never within heartbeat_timeout of a
    --    server start (a restarted database must not kill every worker).
    WITH cand AS (
        SELECT w.id FROM pgwake.workers w
         WHERE w.state IN ('starting', 'alive')
           AND GREATEST(COALESCE(w.last_heartbeat, w.started_at), pg_catalog.pg_postmaster_start_time())
               + w.heartbeat_timeout < pg_catalog.clock_timestamp()
         ORDER BY w.id FOR UPDATE SKIP LOCKED),
    declared AS (
        UPDATE pgwake.workers w SET state = 'dead', reason = 'heartbeat timeout', ended_at = pg_catalog.now()
          FROM cand
         WHERE w.id = cand.id AND w.state IN ('starting', 'alive')
           AND GREATEST(COALESCE(w.last_heartbeat, w.started_at), pg_catalog.pg_postmaster_start_time())
               + w.heartbeat_timeout < pg_catalog.clock_timestamp()
        RETURNING w.id)
    SELECT array_agg(d.id ORDER BY d.id) INTO dead_ids FROM declared d;
    n_rel := 0;
    FOREACH wid IN ARRAY COALESCE(dead_ids, '{}'::text[]) LOOP
        SELECT n_rel + r.requeued + r.dead INTO n_rel
          FROM pgwake.release_leases(wid, 'heartbeat timeout', false) r;
    END LOOP;

    -- 2. Leases past lease_until, or held by a worker that is not live.
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
               last_error = 'lease of ' || COALESCE(t.lease_owner, '?') || ' expired',
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

    -- 3. The next deadline anyone should act on.
    SELECT LEAST(
        (SELECT min(GREATEST(COALESCE(w.last_heartbeat, w.started_at), pg_catalog.pg_postmaster_start_time())
                    + w.heartbeat_timeout)
           FROM pgwake.workers w WHERE w.state IN ('starting', 'alive')),
        (SELECT min(t.lease_until) FROM pgwake.tasks t WHERE t.status = 'leased'))
      INTO next_at;

    RETURN QUERY SELECT n_rel, COALESCE(dead_ids, '{}'::text[]),
        CASE WHEN next_at IS NOT NULL
             THEN GREATEST(extract(epoch FROM next_at - pg_catalog.clock_timestamp())::float8, 0) END;
END $$;
COMMENT ON FUNCTION pgwake.expire_leases IS
    'declares dead the workers past their heartbeat deadline, releases expired leases and those of dead workers, and returns the seconds to the next deadline; safe to run concurrently (pg_cron backstop)';

CREATE FUNCTION pgwake.mark_alerted(worker_ids text[]) RETURNS SETOF text
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    UPDATE pgwake.workers w SET alerted_at = pg_catalog.now()
     WHERE w.id = ANY (mark_alerted.worker_ids) AND w.alerted_at IS NULL
    RETURNING w.id
$$;
COMMENT ON FUNCTION pgwake.mark_alerted IS
    'claims the alerting of these workers'' deaths: returns the ids nobody alerted yet, so each death is alerted once';

CREATE FUNCTION pgwake.dead_worker_info(worker_ids text[])
RETURNS TABLE (id text, stage text, host text, pid int, last_seen_s float8, tasks text, reason text)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT w.id, w.stage, w.host, w.pid,
           extract(epoch FROM pg_catalog.now() - COALESCE(w.last_heartbeat, w.started_at))::float8,
           array_to_string(w.released_tasks, ', '), w.reason
      FROM pgwake.workers w WHERE w.id = ANY (dead_worker_info.worker_ids)
     ORDER BY w.id
$$;
COMMENT ON FUNCTION pgwake.dead_worker_info IS 'what an alert says of dead workers: stage, host, last seen, released tasks';

CREATE FUNCTION pgwake.unalerted_deaths(lim int DEFAULT 100) RETURNS SETOF text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT w.id FROM pgwake.workers w
     WHERE w.state = 'dead' AND w.alerted_at IS NULL AND w.reason = 'heartbeat timeout'
     ORDER BY w.ended_at LIMIT unalerted_deaths.lim
$$;
COMMENT ON FUNCTION pgwake.unalerted_deaths IS
    'workers declared dead for a missed heartbeat whose death nobody alerted yet (e.g. declared by pg_cron)';

-- ---------------------------------------------------------------- operator functions

CREATE FUNCTION pgwake.retry(task_id bigint) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t_stage text;
BEGIN
    UPDATE pgwake.tasks t
       SET status = 'pending', not_before = pg_catalog.now(), finished_at = NULL,
           max_attempts = GREATEST(t.max_attempts, t.attempts + 1)
     WHERE t.id = retry.task_id AND t.status IN ('dead', 'pending')
    RETURNING t.stage INTO t_stage;
    IF t_stage IS NULL THEN
        RETURN false;
    END IF;
    PERFORM pg_catalog.pg_notify('pgwake_task', t_stage);
    RETURN true;
END $$;
COMMENT ON FUNCTION pgwake.retry IS 'makes a dead or pending task claimable now (with one more attempt if it had none left)';

CREATE FUNCTION pgwake.cancel(task_id bigint) RETURNS boolean
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    WITH c AS (
        UPDATE pgwake.tasks t SET status = 'dead', last_error = 'cancelled', finished_at = pg_catalog.now()
         WHERE t.id = cancel.task_id AND t.status = 'pending'
        RETURNING 1)
    SELECT EXISTS (SELECT 1 FROM c)
$$;
COMMENT ON FUNCTION pgwake.cancel IS 'a pending task becomes dead with reason cancelled';

CREATE FUNCTION pgwake.prune(keep interval DEFAULT '7 days') RETURNS int
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n_tasks int; n_runs int; n_workers int;
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
    RETURN n_tasks + n_runs + n_workers;
END $$;
COMMENT ON FUNCTION pgwake.prune IS 'deletes done tasks, finished runs and ended workers older than keep; returns rows deleted';

CREATE FUNCTION pgwake.set_stage_state(stage text, host text, state text, reason text DEFAULT NULL)
RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    INSERT INTO pgwake.stage_state AS s (stage, host, state, reason)
    VALUES (set_stage_state.stage, set_stage_state.host, set_stage_state.state, set_stage_state.reason)
    ON CONFLICT (stage, host) DO UPDATE
       SET since = CASE WHEN s.state = EXCLUDED.state THEN s.since ELSE pg_catalog.now() END,
           state = EXCLUDED.state, reason = EXCLUDED.reason, updated_at = pg_catalog.now()
$$;
COMMENT ON FUNCTION pgwake.set_stage_state IS 'records what a daemon reports of one of its stages (running, fatal, stopped)';

CREATE FUNCTION pgwake.stage_pending(stage text, lim int) RETURNS TABLE (claimable int, next_s float8)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT (SELECT count(*)::int FROM (SELECT 1 FROM pgwake.tasks t
                                        WHERE t.stage = stage_pending.stage AND t.status = 'pending'
                                          AND t.not_before <= pg_catalog.now()
                                        LIMIT stage_pending.lim) c),
           (SELECT extract(epoch FROM min(t.not_before) - pg_catalog.clock_timestamp())::float8
              FROM pgwake.tasks t
             WHERE t.stage = stage_pending.stage AND t.status = 'pending'
               AND t.not_before > pg_catalog.now())
$$;
COMMENT ON FUNCTION pgwake.stage_pending IS
    'counts claimable tasks of a stage (at most lim) and the seconds until the next future not_before';

-- ---------------------------------------------------------------- watching users' tables

CREATE FUNCTION pgwake.watch_notify() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM pg_catalog.pg_notify('pgwake_wake', TG_ARGV[0]);
    RETURN NULL;
END $$;

-- Trigger names fit in 63 bytes whatever the stage name: a hash keeps them apart.
CREATE FUNCTION pgwake.watch_trigger_name(stage text) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT 'pgwake_wake_' || pg_catalog.left(pg_catalog.md5(watch_trigger_name.stage), 20)
$$;

CREATE FUNCTION pgwake.watch_table(tbl regclass, stage text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET client_min_messages = warning AS $$
BEGIN
    IF watch_table.stage !~ '^[a-z0-9_][a-z0-9_.-]{0,62}$' THEN
        RAISE EXCEPTION 'invalid stage name "%"', watch_table.stage
            USING HINT = 'stage names match ^[a-z0-9_][a-z0-9_.-]{0,62}$';
    END IF;
    EXECUTE format('DROP TRIGGER IF EXISTS %I ON %s', pgwake.watch_trigger_name(watch_table.stage),
                   watch_table.tbl);
    EXECUTE format('CREATE TRIGGER %I AFTER INSERT ON %s FOR EACH STATEMENT '
                   'EXECUTE FUNCTION pgwake.watch_notify(%L)',
                   pgwake.watch_trigger_name(watch_table.stage), watch_table.tbl, watch_table.stage);
END $$;
COMMENT ON FUNCTION pgwake.watch_table IS
    'makes inserts into tbl emit NOTIFY pgwake_wake, stage (one per statement)';

CREATE FUNCTION pgwake.unwatch_table(tbl regclass, stage text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET client_min_messages = warning AS $$
BEGIN
    EXECUTE format('DROP TRIGGER IF EXISTS %I ON %s', pgwake.watch_trigger_name(unwatch_table.stage),
                   unwatch_table.tbl);
END $$;
COMMENT ON FUNCTION pgwake.unwatch_table IS 'removes the trigger watch_table added';

-- ---------------------------------------------------------------- views

CREATE VIEW pgwake.v_workers AS
SELECT w.id, w.stage, w.host, w.pid, w.state, w.reason, w.started_at, w.last_heartbeat, w.ended_at,
       extract(epoch FROM pg_catalog.now() - COALESCE(w.last_heartbeat, w.started_at))::float8 AS last_seen_s,
       (SELECT array_agg(t.id ORDER BY t.id) FROM pgwake.tasks t
         WHERE t.lease_owner = w.id AND t.status = 'leased') AS tasks
  FROM pgwake.workers w;

CREATE VIEW pgwake.v_dead_workers AS
SELECT w.id, w.stage, w.host, w.pid, w.reason, w.last_heartbeat, w.ended_at, w.alerted_at
  FROM pgwake.workers w WHERE w.state = 'dead';

CREATE VIEW pgwake.v_stage_stats AS
SELECT t.stage,
       count(*) FILTER (WHERE t.status = 'pending' AND t.not_before <= pg_catalog.now()) AS pending,
       count(*) FILTER (WHERE t.status = 'pending' AND t.not_before > pg_catalog.now()) AS retrying,
       count(*) FILTER (WHERE t.status = 'leased') AS leased,
       count(*) FILTER (WHERE t.status = 'done') AS done,
       count(*) FILTER (WHERE t.status = 'dead') AS dead,
       sum(t.releases) AS reexecuted,
       extract(epoch FROM pg_catalog.now() - min(t.not_before)
               FILTER (WHERE t.status = 'pending' AND t.not_before <= pg_catalog.now()))::float8
           AS oldest_pending_s
  FROM pgwake.tasks t
 GROUP BY t.stage;

CREATE VIEW pgwake.v_runs AS
SELECT r.id, r.stage, r.params, r.created_at,
       CASE WHEN s.dead > 0 THEN 'failed'
            WHEN s.total > 0 AND s.open = 0 THEN 'done'
            ELSE 'active' END AS state,
       s.total, s.done, s.dead, s.reexecuted, s.finished_at, s.progress
  FROM pgwake.runs r
  CROSS JOIN LATERAL (
      SELECT count(*) AS total,
             count(*) FILTER (WHERE t.status = 'done') AS done,
             count(*) FILTER (WHERE t.status = 'dead') AS dead,
             count(*) FILTER (WHERE t.status IN ('pending', 'leased')) AS open,
             COALESCE(sum(t.releases), 0) AS reexecuted,
             max(t.finished_at) AS finished_at,
             (SELECT jsonb_object_agg(p.stage, jsonb_build_object('done', p.done, 'total', p.total))
                FROM (SELECT t2.stage, count(*) FILTER (WHERE t2.status = 'done') AS done,
                             count(*) AS total, min(t2.id) AS first_id
                        FROM pgwake.tasks t2 WHERE t2.run_id = r.id GROUP BY t2.stage) p)
                 AS progress
        FROM pgwake.tasks t WHERE t.run_id = r.id) s;

INSERT INTO pgwake.schema_migrations (version) VALUES (1);
