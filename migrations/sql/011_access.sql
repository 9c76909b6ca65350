-- Access (issue 11): named tokens with a role, for the HTTP API and the
-- console, and the console's browser sessions. Only hashes are stored: a
-- token is shown once, when it is created, and a session id lives only in
-- the browser's cookie.
CREATE TABLE access_tokens (
    id           bigserial PRIMARY KEY,
    name         text NOT NULL UNIQUE,
    role         text NOT NULL CHECK (role IN ('admin', 'viewer')),
    -- sha256 of the token (256 random bits: no salt or slow hash needed).
    hash         bytea NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);

CREATE TABLE console_sessions (
    -- sha256 of the session id in the cookie.
    id_hash      bytea PRIMARY KEY,
    -- The named token signed in with; NULL for POSTCALL_API_TOKEN, whose
    -- hash is then kept in api_token_hash so that changing the variable
    -- ends its sessions.
    token_id     bigint REFERENCES access_tokens (id) ON DELETE CASCADE,
    api_token_hash bytea,
    role         text NOT NULL CHECK (role IN ('admin', 'viewer')),
    csrf         text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    CHECK ((token_id IS NULL) <> (api_token_hash IS NULL))
);

CREATE INDEX console_sessions_token_idx ON console_sessions (token_id);
CREATE INDEX console_sessions_expires_idx ON console_sessions (expires_at);
