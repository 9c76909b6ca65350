-- Bulk reanalysis (`postcall reanalyze --agent`): one row per bulk run, so
-- that an interrupted run resumes after the last call it enqueued.
CREATE TABLE bulk_reanalyses (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    agent_id     text NOT NULL,
    since        timestamptz,
    until        timestamptz,
    kinds        text NOT NULL,
    -- The last call enqueued, in id order (ids are time-ordered uuids).
    cursor_id    uuid,
    enqueued     integer NOT NULL DEFAULT 0,
    skipped      integer NOT NULL DEFAULT 0,
    total        integer NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz
);

CREATE INDEX bulk_reanalyses_open_idx ON bulk_reanalyses (agent_id) WHERE finished_at IS NULL;

-- Runs created by one bulk run, to show its progress.
ALTER TABLE analysis_runs ADD COLUMN bulk_id bigint REFERENCES bulk_reanalyses (id);
CREATE INDEX analysis_runs_bulk_id_idx ON analysis_runs (bulk_id) WHERE bulk_id IS NOT NULL;
