-- postcall's initial schema: agents with versioned plans, calls, analysis and
-- QC runs with their history, and the LLM requests each run paid for.

CREATE TABLE agents (
    id              text PRIMARY KEY,
    name            text NOT NULL,
    current_version integer NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Every version of every plan is kept: an analysis run names the version
-- that produced it.
CREATE TABLE agent_plans (
    agent_id   text NOT NULL REFERENCES agents (id),
    version    integer NOT NULL,
    plan       jsonb NOT NULL,
    plan_hash  text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (agent_id, version)
);

CREATE TABLE calls (
    id               uuid PRIMARY KEY,
    call_id          text NOT NULL UNIQUE,
    agent_id         text NOT NULL REFERENCES agents (id),

    -- The call record as the platform sent it.
    direction        text,
    status           text,
    ended_reason     text,
    disconnected_by  text,
    source           text,
    campaign_id      text,
    is_test          boolean NOT NULL DEFAULT false,
    customer_name    text,
    customer_request text,
    phone_number     text,
    -- phone_key is the normalised number used for lookups and erasure.
    phone_key        text,
    carrier          text,
    did              text,
    started_at       timestamptz,
    answered_at      timestamptz,
    ended_at         timestamptz NOT NULL,
    ring_ms          bigint,
    hold_ms          bigint,
    talk_ms          bigint,
    duration         double precision,
    transcript       jsonb,
    recording_key    text,
    contact_data     jsonb,
    function_output  jsonb,
    -- Every other key of the record (tool_calls, events, unknown keys), as sent.
    extra            jsonb NOT NULL DEFAULT '{}',

    -- Post-call processing.
    state              text NOT NULL DEFAULT 'processing'
                       CHECK (state IN ('processing', 'waiting_llm', 'done', 'failed')),
    done               boolean NOT NULL DEFAULT false,
    plan_version       integer,
    analysis_run_id    bigint,
    qc_run_id          bigint,
    disposition        text,
    disposition_source text CHECK (disposition_source IN ('auto', 'analysis')),
    auto_reason        text,
    general_success    boolean,
    call_summary       text,
    final_score        integer CHECK (final_score BETWEEN 1 AND 10),
    qc_passed          boolean,

    is_purged        boolean NOT NULL DEFAULT false,
    purged_at        timestamptz,
    deleted_at       timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX calls_created_at_idx ON calls (created_at DESC, id DESC);
CREATE INDEX calls_agent_id_created_at_idx ON calls (agent_id, created_at DESC);
CREATE INDEX calls_phone_key_idx ON calls (phone_key) WHERE phone_key IS NOT NULL;

-- One run of the analysis or QC prompt for one call. Reanalysis adds runs;
-- calls.analysis_run_id and calls.qc_run_id point at the current ones.
CREATE TABLE analysis_runs (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    call_id              uuid NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    kind                 text NOT NULL CHECK (kind IN ('analysis', 'qc')),
    agent_id             text NOT NULL,
    plan_version         integer NOT NULL,
    trigger              text NOT NULL CHECK (trigger IN ('ingest', 'reanalyze')),
    status               text NOT NULL DEFAULT 'pending'
                         CHECK (status IN ('pending', 'waiting_llm', 'succeeded', 'failed')),
    model                text,
    demo                 boolean NOT NULL DEFAULT false,
    -- analysis: the fields object; qc: [{id, passed, evidence}].
    output               jsonb,
    score                integer,
    passed               boolean,
    error                text,
    prompt_tokens        integer NOT NULL DEFAULT 0,
    completion_tokens    integer NOT NULL DEFAULT 0,
    cached_read_tokens   integer NOT NULL DEFAULT 0,
    cache_created_tokens integer NOT NULL DEFAULT 0,
    requests             integer NOT NULL DEFAULT 0,
    latency_ms           bigint,
    created_at           timestamptz NOT NULL DEFAULT now(),
    finished_at          timestamptz
);

CREATE INDEX analysis_runs_call_id_idx ON analysis_runs (call_id, kind, id DESC);

-- Every request sent to a model, with its usage: money spent is recorded even
-- when the run fails.
CREATE TABLE llm_requests (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id               bigint NOT NULL REFERENCES analysis_runs (id) ON DELETE CASCADE,
    call_id              uuid NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    purpose              text NOT NULL,
    model                text NOT NULL,
    prompt_tokens        integer NOT NULL,
    completion_tokens    integer NOT NULL,
    cached_read_tokens   integer NOT NULL,
    cache_created_tokens integer NOT NULL,
    latency_ms           bigint NOT NULL,
    error                text,
    created_at           timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX llm_requests_call_id_idx ON llm_requests (call_id);
CREATE INDEX llm_requests_run_id_idx ON llm_requests (run_id);
