-- Batch re-analysis (`postcall reanalyze --agent ID --batch`, issue 14): the
-- runs of a bulk reanalysis sent through OpenAI's Batch API. One row per
-- provider batch; its state says which step the polling job does next, so
-- that a restarted worker resumes where it stopped.
ALTER TABLE bulk_reanalyses ADD COLUMN batch boolean NOT NULL DEFAULT false;

CREATE TABLE llm_batches (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    bulk_id           bigint NOT NULL REFERENCES bulk_reanalyses (id),
    -- collecting: the command is still adding runs; ready: to upload;
    -- uploaded: input file uploaded, batch not created; submitted: the
    -- provider has it; ended: its results are dispatched; done: every run
    -- of it has finished.
    state             text NOT NULL DEFAULT 'collecting'
                      CHECK (state IN ('collecting', 'ready', 'uploaded', 'submitted', 'ended', 'done')),
    -- 1 for the first submission of its runs, 2 for a resubmission of the
    -- runs an expired or cancelled batch did not answer.
    attempt           integer NOT NULL DEFAULT 1,
    input_file_id     text,
    provider_batch_id text,
    -- The provider's status (validating, in_progress, finalizing,
    -- completed, expired, failed, cancelling, cancelled) and counts.
    status            text,
    total             integer NOT NULL DEFAULT 0,
    completed         integer NOT NULL DEFAULT 0,
    failed            integer NOT NULL DEFAULT 0,
    output_file_id    text,
    error_file_id     text,
    error             text,
    -- What became of its runs once it ended.
    requests          integer NOT NULL DEFAULT 0,
    answered          integer NOT NULL DEFAULT 0,
    errored           integer NOT NULL DEFAULT 0,
    resubmitted       integer NOT NULL DEFAULT 0,
    live              integer NOT NULL DEFAULT 0,
    created_at        timestamptz NOT NULL DEFAULT now(),
    submitted_at      timestamptz,
    ended_at          timestamptz
);

CREATE INDEX llm_batches_bulk_id_idx ON llm_batches (bulk_id);

-- One row per run sent (or to send) through a batch. answer holds the
-- provider's answer to the run's first request until the run has finished.
CREATE TABLE llm_batch_items (
    run_id      bigint PRIMARY KEY REFERENCES analysis_runs (id) ON DELETE CASCADE,
    batch_id    bigint NOT NULL REFERENCES llm_batches (id),
    -- queued: in its batch; answered: the batch answered, the run's job is
    -- enqueued; live: the run's job is enqueued to send it live.
    state       text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'answered', 'live')),
    max_tokens  integer,
    answer      jsonb,
    error       text
);

CREATE INDEX llm_batch_items_batch_idx ON llm_batch_items (batch_id, state, run_id);
