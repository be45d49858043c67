-- schema.sql: the lead-generation pipeline of SPEC section 1 as its users have
-- it, before pgwake: its work lives in its own tables, each with its own lease
-- columns (worker_id, worker_lease_until), claimed with FOR UPDATE SKIP LOCKED
-- by workers that poll. pgwake changes nothing here (see pgwake.sql).
--
--   runs                pending -> discovering -> discovered   (company_discovery)
--   company_candidates  pending -> researching -> researched   (company_research)
--                       researched -> finding_contacts -> done (contact_discovery)
--   contacts            what contact_discovery found, one row per person
CREATE SCHEMA pm_pipeline;

CREATE TABLE pm_pipeline.runs (
    id                 bigserial PRIMARY KEY,
    industry           text NOT NULL,
    companies          int NOT NULL DEFAULT 6,     -- how many candidates to discover
    status             text NOT NULL DEFAULT 'pending',
    worker_id          text,                       -- the lease: who works on it ...
    worker_lease_until timestamptz,                -- ... and until when
    attempts           int NOT NULL DEFAULT 0,     -- leases taken (a re-execution adds one)
    created_at         timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE pm_pipeline.company_candidates (
    id                 bigserial PRIMARY KEY,
    run_id             bigint NOT NULL REFERENCES pm_pipeline.runs (id),
    name               text NOT NULL,
    status             text NOT NULL DEFAULT 'pending',
    worker_id          text,
    worker_lease_until timestamptz,
    attempts           int NOT NULL DEFAULT 0,
    research           jsonb,
    researched_by      text,
    contacts_by        text,
    UNIQUE (run_id, name)
);
CREATE INDEX company_candidates_status_idx ON pm_pipeline.company_candidates (status);
CREATE INDEX company_candidates_worker_idx ON pm_pipeline.company_candidates (worker_id)
    WHERE worker_id IS NOT NULL;

CREATE TABLE pm_pipeline.contacts (
    id           bigserial PRIMARY KEY,
    candidate_id bigint NOT NULL REFERENCES pm_pipeline.company_candidates (id),
    name         text NOT NULL,
    email        text NOT NULL,
    UNIQUE (candidate_id, email)
);

-- What the UI shows: each run's progress per stage.
CREATE VIEW pm_pipeline.run_progress AS
SELECT r.id, r.industry, r.status AS run_status,
       count(c.id) AS candidates,
       count(c.id) FILTER (WHERE c.status IN ('researched', 'finding_contacts', 'done')) AS researched,
       count(c.id) FILTER (WHERE c.status = 'done') AS done,
       (SELECT count(*) FROM pm_pipeline.contacts k JOIN pm_pipeline.company_candidates c2
                          ON c2.id = k.candidate_id WHERE c2.run_id = r.id) AS contacts
  FROM pm_pipeline.runs r LEFT JOIN pm_pipeline.company_candidates c ON c.run_id = r.id
 GROUP BY r.id;
