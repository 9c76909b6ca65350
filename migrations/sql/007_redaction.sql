-- What ingest redacted from each call's transcript: a count per entity the
-- agent's plan listed, never a value. A call whose plan redacted nothing at
-- ingest has no row (its document says "redaction": null). The counts are
-- not personal data: the purge keeps them; a hard delete removes them with
-- the call.
CREATE TABLE call_redactions (
    call_id uuid PRIMARY KEY REFERENCES calls (id) ON DELETE CASCADE,
    counts  jsonb NOT NULL
);
