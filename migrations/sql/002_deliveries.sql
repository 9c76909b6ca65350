-- CRM and webhook deliveries: one row per (call, integration) delivery, one
-- row per HTTP attempt, and each integration's health.

CREATE TABLE deliveries (
    -- id is the Standard Webhooks webhook-id: the same on every retry.
    id               text PRIMARY KEY,
    call_id          uuid NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    agent_id         text NOT NULL,
    integration      text NOT NULL,
    type             text NOT NULL,
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'delivered', 'failed', 'disabled')),
    attempts         integer NOT NULL DEFAULT 0,
    last_status_code integer,
    last_error       text,
    external_id      text,
    next_attempt_at  timestamptz,
    delivered_at     timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX deliveries_call_id_idx ON deliveries (call_id, integration, created_at DESC);

CREATE TABLE delivery_attempts (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id text NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    call_id     uuid NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    attempt     integer NOT NULL,
    outcome     text NOT NULL,
    status_code integer,
    latency_ms  bigint NOT NULL,
    -- A short error without secrets or personal data.
    error       text,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX delivery_attempts_delivery_id_idx ON delivery_attempts (delivery_id, attempt);
CREATE INDEX delivery_attempts_call_id_idx ON delivery_attempts (call_id);

-- An integration failing continuously is disabled; success clears
-- first_failure_at. Re-enabled by `postcall integrations enable`.
CREATE TABLE integration_health (
    agent_id         text NOT NULL,
    integration      text NOT NULL,
    first_failure_at timestamptz,
    disabled_at      timestamptz,
    disabled_reason  text,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (agent_id, integration)
);
