-- pg_cron.sql: what `pgwake cron install` does, for those who prefer psql.
--
-- pg_cron runs pgwake's backstop while no pgwake daemon runs (or alongside
-- them: every function here is safe to run concurrently and often):
--   pgwake.expire_leases()  declares dead the workers whose heartbeat is overdue
--                           and returns their task leases to pending (SPEC 3);
--   pgwake.retry_releases() runs again the release_sql statements that failed
--                           (leases in users' own tables, sql/0003);
--   pgwake.prune()          deletes done tasks, finished runs and ended workers
--                           older than 7 days.
--
-- pg_cron lives in one database of the server (the setting cron.database_name,
-- usually postgres), and its jobs name the database they run in. So run this
-- file in pg_cron's database, and name the database that holds schema pgwake:
--
--   psql -d postgres -v db=mydb -f conf/pg_cron.sql            # schedule
--   psql -d postgres -v db=mydb -v remove=1 -f conf/pg_cron.sql  # unschedule
--
-- The server needs, in postgresql.conf (then a restart):
--   shared_preload_libraries = 'pg_cron'
--   cron.database_name = 'postgres'
--   cron.host = '/var/run/postgresql'   -- when the server listens on a unix socket only
-- and once, in pg_cron's database: CREATE EXTENSION pg_cron;
-- The job's user (the one running this file) needs the right to execute the
-- functions of schema pgwake in database :db.
--
-- The job names are those `pgwake cron install|remove` use, so the two ways
-- can be mixed: scheduling again updates the jobs in place.

\set ON_ERROR_STOP 1
-- Mistakes stop here with the reason (psql exits 3).
\if :{?db}
\else
DO $$ BEGIN RAISE EXCEPTION 'no database named: psql -d <pg_cron database> -v db=<pgwake database> [-v remove=1] -f conf/pg_cron.sql'; END $$;
\endif
SELECT COALESCE(pg_catalog.current_setting('cron.database_name', true) = pg_catalog.current_database(),
                false) AS in_cron_db \gset
\if :in_cron_db
\else
DO $$ BEGIN RAISE EXCEPTION 'this is not pg_cron''s database (see SHOW cron.database_name), or pg_cron is not loaded: run this file there, after CREATE EXTENSION pg_cron'; END $$;
\endif

\if :{?remove}
-- Unschedule both jobs of database :db (zero rows when there were none).
SELECT cron.unschedule(jobid), jobname
  FROM cron.job
 WHERE jobname IN ('pgwake-expire-leases-' || :'db', 'pgwake-prune-' || :'db',
                   'pgwake-retry-releases-' || :'db');
\else
-- pg_cron 1.5 and later schedule in seconds: expire every 5 seconds, so a dead
-- worker's task waits at most heartbeat_timeout + 5 s without a daemon.
-- Debian 12's pg_cron 1.4 schedules by the minute: every minute, then.
-- (extversion is e.g. "1.4-1": compare major and minor only)
SELECT pg_catalog.regexp_match(extversion, '^(\d+)\.(\d+)')::int[] >= '{1,5}' AS has_seconds
  FROM pg_catalog.pg_extension WHERE extname = 'pg_cron' \gset
\if :has_seconds
\set every '5 seconds'
\else
\set every '* * * * *'
\endif

SELECT cron.schedule_in_database('pgwake-expire-leases-' || :'db', :'every',
                                 'SELECT * FROM pgwake.expire_leases()', :'db')
       AS expire_leases_job;

SELECT cron.schedule_in_database('pgwake-retry-releases-' || :'db', :'every',
                                 'SELECT count(*) FROM pgwake.retry_releases()', :'db')
       AS retry_releases_job;

-- Daily at 03:17 (server time), away from the top of the hour.
SELECT cron.schedule_in_database('pgwake-prune-' || :'db', '17 3 * * *',
                                 'SELECT pgwake.prune()', :'db')
       AS prune_job;
\endif

-- What is scheduled now for database :db; recent outcomes are in cron.job_run_details.
SELECT jobid, jobname, schedule, command, database, active
  FROM cron.job
 WHERE jobname IN ('pgwake-expire-leases-' || :'db', 'pgwake-prune-' || :'db',
                   'pgwake-retry-releases-' || :'db')
 ORDER BY jobname;
