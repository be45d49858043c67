-- 09_watch_long_stage: watch_table for two stages of the longest legal names
-- (63 characters) that share their first 51 characters: each watch must keep
-- working, and unwatching one must not unwatch the other. (NOTICEs are muted:
-- how the triggers are named is the implementation's business.)
SET client_min_messages = warning;
\set nopid_sorted '| sed -e ''s/PID [0-9]*/PID N/'' | sort'
\set long_a 'stage_with_a_long_name_for_a_pipeline_of_many_steps_aaaaaaaaaaa'
\set long_b 'stage_with_a_long_name_for_a_pipeline_of_many_steps_bbbbbbbbbbb'
SELECT length(:'long_a') AS len_a, length(:'long_b') AS len_b;
CREATE TEMP TABLE leads (id int);
SELECT pgwake.watch_table('leads', :'long_a');
SELECT pgwake.watch_table('leads', :'long_b');
LISTEN pgwake_wake;
\o :nopid_sorted
INSERT INTO leads VALUES (1);
\o
SELECT pgwake.unwatch_table('leads', :'long_b');
\o :nopid_sorted
INSERT INTO leads VALUES (2);
\o
