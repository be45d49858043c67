-- 0004_console: indexes for the operator console's task list (GET /tasks,
-- `pgwake tasks`), newest first with keyset paging on id. Done tasks are
-- read through the primary key (they are most rows); a stage filter and the
-- unfinished states get indexes of their own, so a page of dead tasks does
-- not walk a million done ones. Also the last lines of dead workers.
CREATE INDEX tasks_stage_id_idx ON pgwake.tasks (stage, id);
CREATE INDEX tasks_open_status_id_idx ON pgwake.tasks (status, id) WHERE status <> 'done';
-- /metrics counts the tasks finished since its previous read (done ones have
-- tasks_finished_idx).
CREATE INDEX tasks_finished_dead_idx ON pgwake.tasks (finished_at) WHERE status = 'dead';

-- Deaths on any host, newest first, with the last lines the dead worker
-- printed (written by the daemon that ran it, as the alert carries them).
ALTER TABLE pgwake.workers ADD COLUMN last_lines text;
CREATE INDEX workers_dead_ended_idx ON pgwake.workers (ended_at) WHERE state = 'dead';

INSERT INTO pgwake.schema_migrations (version) VALUES (5);
