-- 0003_release_sql: leases in users' own tables. A stage whose work lives in
-- its own tables (pending_sql) registers a release statement (release_sql, with
-- $1 = the worker id); a trigger runs it whenever a worker of that stage ends
-- (exited or dead: crash, hang, task_timeout, pg_cron), so the daemon and the
-- pg_cron backstop release those leases exactly like pgwake.tasks leases. A
-- failing statement never blocks the end of the worker: it is recorded and
-- retried by pgwake.retry_releases() (the daemon, and pg_cron).

CREATE TABLE pgwake.release_statements (
    stage      pgwake.stage_name PRIMARY KEY,
    statement  text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE pgwake.release_statements IS
    'each stage''s release_sql, written by the daemon at start-up and reload (pgwake.set_release_sql)';

-- No foreign key to workers: prune may delete the worker, the failure stays visible.
CREATE TABLE pgwake.release_failures (
    worker_id       text PRIMARY KEY,
    stage           pgwake.stage_name NOT NULL,
    sqlstate        text NOT NULL,
    message         text NOT NULL,
    attempts        int NOT NULL DEFAULT 1,
    first_failed_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    last_failed_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    next_try_at     timestamptz NOT NULL
);
CREATE INDEX release_failures_due_idx ON pgwake.release_failures (next_try_at);
COMMENT ON TABLE pgwake.release_failures IS
    'release_sql runs that failed (the worker''s end is recorded anyway); pgwake.retry_releases() tries them again';

REVOKE ALL ON pgwake.release_statements, pgwake.release_failures FROM PUBLIC;

-- ---------------------------------------------------------------- checking a statement

-- Checking must never execute anything. EXPLAIN plans without executing and
-- checks tables, columns and privileges, but PL/pgSQL's EXECUTE would run a
-- second command after a ";": so first, with string literals, quoted names and
-- comments removed, no ";" may remain (a trailing one aside) and no "$" but
-- $1 (dollar quoting could hide a ";" from that test). It runs with the pinned
-- search_path of the trigger, so what passes here resolves the same there.
CREATE FUNCTION pgwake.release_sql_problem(statement text) RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    bare text;
BEGIN
    bare := regexp_replace(COALESCE(release_sql_problem.statement, ''),
                           $re$'([^']|'')*'|"([^"]|"")*"|--[^\n]*|/\*.*?\*/$re$, ' ', 'g');
    bare := regexp_replace(bare, ';\s*$', '');
    IF bare ~ ';' THEN
        RETURN 'it must be one statement (no ";" between statements)';
    END IF;
    IF bare ~ '\$([^1]|1[0-9]|$)' THEN
        RETURN 'it may use $1 only (the worker id): no other parameter, no dollar quoting';
    END IF;
    IF bare !~ '\$1' THEN
        RETURN 'it must reference $1 (the worker id, as in WHERE worker_id = $1)';
    END IF;
    BEGIN
        EXECUTE 'EXPLAIN (COSTS OFF) ' || release_sql_problem.statement USING NULL::text;
    EXCEPTION WHEN OTHERS THEN
        RETURN SQLERRM || ' (SQLSTATE ' || SQLSTATE || ')'
            || CASE WHEN SQLSTATE = '42P01'
                    THEN ' (tables must exist and be named with their schema: release_sql runs with search_path pg_catalog)'
                    ELSE '' END;
    END;
    RETURN NULL;
END $$;
COMMENT ON FUNCTION pgwake.release_sql_problem IS
    'why a release_sql statement cannot be used (does not parse, names a missing table, has no $1), or NULL; executes nothing';

CREATE FUNCTION pgwake.set_release_sql(stage text, statement text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    problem text;
BEGIN
    IF set_release_sql.statement IS NULL OR set_release_sql.statement = '' THEN
        DELETE FROM pgwake.release_statements r WHERE r.stage = set_release_sql.stage;
        RETURN;
    END IF;
    problem := pgwake.release_sql_problem(set_release_sql.statement);
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'release_sql of stage %: %', set_release_sql.stage, problem
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO pgwake.release_statements AS r (stage, statement)
    VALUES (set_release_sql.stage, set_release_sql.statement)
    ON CONFLICT ON CONSTRAINT release_statements_pkey DO UPDATE
       SET statement = EXCLUDED.statement, updated_at = pg_catalog.now()
     WHERE r.statement IS DISTINCT FROM EXCLUDED.statement;
END $$;
REVOKE EXECUTE ON FUNCTION pgwake.set_release_sql(text, text) FROM PUBLIC;
COMMENT ON FUNCTION pgwake.set_release_sql IS
    'registers (or with NULL removes) the release statement of a stage, after checking it; the daemon''s role only';

-- ---------------------------------------------------------------- running it

-- run_release runs one stage's statement for one worker, as the owner of
-- schema pgwake whoever ended the worker, in a subtransaction: on failure the
-- error is recorded with a backoff (1 s doubling to 5 min) and the caller goes
-- on; a statement that changed rows wakes the stage (NOTIFY pgwake_wake). A
-- session holding the rows (the worker's own transaction, hung) delays it at
-- most max_wait (or the caller's shorter lock_timeout), then the retry takes over.
CREATE FUNCTION pgwake.run_release(worker_id text, stage text, statement text,
                                   max_wait interval DEFAULT '1 second') RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    st  text;
    msg text;
    n   bigint;
    lt  text := pg_catalog.current_setting('lock_timeout');
BEGIN
    BEGIN
        IF lt = '0' OR lt::interval > run_release.max_wait THEN
            PERFORM pg_catalog.set_config('lock_timeout',
                (extract(epoch FROM run_release.max_wait) * 1000)::bigint::text, true);
        END IF;
        EXECUTE run_release.statement USING run_release.worker_id;
        GET DIAGNOSTICS n = ROW_COUNT;
        PERFORM pg_catalog.set_config('lock_timeout', lt, true);
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
        INSERT INTO pgwake.release_failures AS f (worker_id, stage, sqlstate, message, next_try_at)
        VALUES (run_release.worker_id, run_release.stage, st, msg, pg_catalog.now() + interval '1 second')
        ON CONFLICT ON CONSTRAINT release_failures_pkey DO UPDATE
           SET sqlstate = EXCLUDED.sqlstate, message = EXCLUDED.message, attempts = f.attempts + 1,
               last_failed_at = pg_catalog.now(),
               next_try_at = pg_catalog.now() + LEAST(interval '1 second' * power(2, f.attempts),
                                                      interval '5 minutes');
        RETURN false;
    END;
    DELETE FROM pgwake.release_failures f WHERE f.worker_id = run_release.worker_id;
    -- Work is claimable again: wake the stage, as a released pgwake.tasks lease does.
    IF n > 0 THEN
        PERFORM pg_catalog.pg_notify('pgwake_wake', run_release.stage);
    END IF;
    RETURN true;
END $$;
REVOKE EXECUTE ON FUNCTION pgwake.run_release(text, text, text, interval) FROM PUBLIC;
COMMENT ON FUNCTION pgwake.run_release IS
    'runs a stage''s release statement for one worker; a failure is recorded in release_failures, never raised';

CREATE FUNCTION pgwake.workers_release_sql() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    stmt text;
BEGIN
    SELECT r.statement INTO stmt FROM pgwake.release_statements r WHERE r.stage = NEW.stage;
    IF stmt IS NOT NULL THEN
        PERFORM pgwake.run_release(NEW.id, NEW.stage, stmt);
    END IF;
    RETURN NULL;
END $$;
REVOKE EXECUTE ON FUNCTION pgwake.workers_release_sql() FROM PUBLIC;

-- Every path that ends a registration (release_worker, worker_exited,
-- expire_worker, expire_leases, task_timeout) sets state: one trigger covers
-- the daemon, other daemons and pg_cron, in the transaction that ends the worker.
CREATE TRIGGER workers_release_sql AFTER UPDATE OF state ON pgwake.workers
    FOR EACH ROW WHEN (OLD.state IN ('starting', 'alive') AND NEW.state IN ('exited', 'dead'))
    EXECUTE FUNCTION pgwake.workers_release_sql();

-- ---------------------------------------------------------------- retrying

-- The daemon calls it with a small lim and max_wait, so that rows locked
-- elsewhere never hold its connection for long; pg_cron with the defaults.
CREATE FUNCTION pgwake.retry_releases(lim int DEFAULT 100, max_wait interval DEFAULT '1 second')
RETURNS TABLE (worker_id text, stage text, released boolean, attempts int, sqlstate text,
               message text, next_retry_s float8)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f record;
BEGIN
    -- The due ones, each once; a concurrent caller skips what this one holds.
    FOR f IN
        SELECT x.worker_id, x.stage, r.statement
          FROM pgwake.release_failures x
          LEFT JOIN pgwake.release_statements r ON r.stage = x.stage
         WHERE x.next_try_at <= pg_catalog.clock_timestamp()
         ORDER BY x.worker_id
         LIMIT retry_releases.lim
           FOR UPDATE OF x SKIP LOCKED
    LOOP
        IF f.statement IS NULL THEN
            -- The stage no longer has a release_sql: nothing left to run.
            DELETE FROM pgwake.release_failures x WHERE x.worker_id = f.worker_id;
        ELSIF pgwake.run_release(f.worker_id, f.stage, f.statement, retry_releases.max_wait) THEN
            retry_releases.worker_id := f.worker_id;
            retry_releases.stage := f.stage;
            released := true;
            RETURN NEXT;
        END IF;
    END LOOP;
    RETURN QUERY
        SELECT x.worker_id, x.stage::text, false, x.attempts, x.sqlstate, x.message,
               GREATEST(extract(epoch FROM x.next_try_at - pg_catalog.clock_timestamp())::float8, 0)
          FROM pgwake.release_failures x
         ORDER BY x.next_try_at
         LIMIT retry_releases.lim;
END $$;
REVOKE EXECUTE ON FUNCTION pgwake.retry_releases(int, interval) FROM PUBLIC;
COMMENT ON FUNCTION pgwake.retry_releases IS
    'runs again the failed release_sql statements that are due; returns those released now and those still failing (with the seconds to their next try); safe to run concurrently (pg_cron)';

CREATE VIEW pgwake.v_release_failures AS
SELECT f.worker_id, f.stage, f.sqlstate, f.message, f.attempts, f.first_failed_at, f.last_failed_at,
       f.next_try_at
  FROM pgwake.release_failures f;

INSERT INTO pgwake.schema_migrations (version) VALUES (3);
