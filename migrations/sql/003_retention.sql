-- Retention: legal holds, the record of every retention run and of what it
-- did to each call (without personal data), and the outbox of recording
-- objects waiting to be deleted from the bucket.

-- A legal hold keeps a call (or every call of an agent) out of the purge,
-- the hard delete and erasure requests until it is cleared. The reason is a
-- case reference for the operator, never personal data.
ALTER TABLE calls
    ADD COLUMN legal_hold_at     timestamptz,
    ADD COLUMN legal_hold_reason text;
ALTER TABLE agents
    ADD COLUMN legal_hold_at     timestamptz,
    ADD COLUMN legal_hold_reason text;

-- The purge walks each agent's unpurged calls by (ended_at, id); the hard
-- delete each agent's soft-deleted calls by (deleted_at, id). Both indexes are
-- partial, so they only hold the calls that still have work ahead of them.
CREATE INDEX calls_purge_due_idx ON calls (agent_id, ended_at, id) WHERE NOT is_purged;
CREATE INDEX calls_deleted_due_idx ON calls (agent_id, deleted_at, id) WHERE deleted_at IS NOT NULL;
CREATE INDEX calls_legal_hold_idx ON calls (agent_id) WHERE legal_hold_at IS NOT NULL;

-- One run of the purge, the hard delete or an erasure request. Counts are
-- added in the transaction of each batch, so they always match what was
-- committed, even for a run that was interrupted.
CREATE TABLE retention_runs (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('purge', 'hard_delete', 'erasure')),
    trigger         text NOT NULL CHECK (trigger IN ('schedule', 'command', 'request')),
    dry_run         boolean NOT NULL DEFAULT false,
    -- What the run applied: the defaults and, per agent, the period in days,
    -- the cutoff and whether the agent was on hold; for an erasure, whether it
    -- selected a call or a phone number (never the number itself).
    policy          jsonb NOT NULL DEFAULT '{}',
    status          text NOT NULL DEFAULT 'running'
                    CHECK (status IN ('running', 'finished', 'partial', 'interrupted', 'failed')),
    started_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    -- A dry run counts what it would have done in the same columns.
    purged          integer NOT NULL DEFAULT 0,
    deleted         integer NOT NULL DEFAULT 0,
    skipped_hold    integer NOT NULL DEFAULT 0,
    objects_queued  integer NOT NULL DEFAULT 0,
    -- Recording objects the bucket has confirmed gone, added by the deletion
    -- jobs as they succeed.
    objects_deleted integer NOT NULL DEFAULT 0,
    errors          integer NOT NULL DEFAULT 0,
    -- The last error, if any: ids and database messages, no personal data.
    error           text
);

CREATE INDEX retention_runs_started_at_idx ON retention_runs (started_at DESC, id DESC);

-- What happened to one call, and why. It names the call by postcall's id and
-- the platform's call_id (opaque identifiers: the platform holds whatever
-- links them to a person, and needs them to check an erasure was done), and
-- lists the names of what was removed, never the values. There is no foreign
-- key to calls: the row outlives a hard-deleted call.
CREATE TABLE retention_audit (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id    bigint REFERENCES retention_runs (id),
    action    text NOT NULL
              CHECK (action IN ('purge', 'hard_delete', 'soft_delete', 'restore', 'hold_set', 'hold_clear')),
    -- policy: the agent's retention period; request: an erasure request;
    -- operator: a delete, restore or hold command; late_result: a run that
    -- finished after its call was purged had its output purged too.
    reason    text NOT NULL CHECK (reason IN ('policy', 'request', 'operator', 'late_result')),
    call_uuid uuid,
    call_id   text,
    agent_id  text NOT NULL,
    removed   text[] NOT NULL DEFAULT '{}',
    note      text,
    at        timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX retention_audit_call_uuid_idx ON retention_audit (call_uuid, id);
CREATE INDEX retention_audit_call_id_idx ON retention_audit (call_id, id);
CREATE INDEX retention_audit_run_id_idx ON retention_audit (run_id);

-- Recording objects to delete, written in the transaction that purges or
-- hard-deletes their call, with the River job that deletes them. A row is
-- removed once the bucket confirms the object is gone, so the key does not
-- outlive the object. Rows of one transaction share a batch: the job's
-- argument.
CREATE SEQUENCE recording_deletion_batch_seq;

CREATE TABLE recording_deletions (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    batch      bigint NOT NULL,
    key        text NOT NULL,
    call_uuid  uuid NOT NULL,
    run_id     bigint REFERENCES retention_runs (id),
    attempts   integer NOT NULL DEFAULT 0,
    last_error text,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX recording_deletions_batch_idx ON recording_deletions (batch);
