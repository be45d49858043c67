-- pgwake.sql: the one migration the pipeline needs to move to pgwake (after
-- `pgwake migrate`): inserts wake the stage that works on them, at once.
-- Candidates become 'researched' by an UPDATE, which watch_table does not see:
-- the research worker sends NOTIFY pgwake_wake, 'contact_discovery' itself.
SELECT pgwake.watch_table('pm_pipeline.runs', 'company_discovery');
SELECT pgwake.watch_table('pm_pipeline.company_candidates', 'company_research');
