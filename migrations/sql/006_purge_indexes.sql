-- The purge replaces free-text errors of a purged call's rows. Few rows
-- carry one, so partial indexes make those lookups probe a small index
-- instead of every row of the call.
CREATE INDEX analysis_runs_call_id_error_idx ON analysis_runs (call_id) WHERE error IS NOT NULL;
CREATE INDEX llm_requests_call_id_error_idx ON llm_requests (call_id) WHERE error IS NOT NULL;
CREATE INDEX deliveries_call_id_error_idx ON deliveries (call_id) WHERE last_error IS NOT NULL;
CREATE INDEX delivery_attempts_call_id_error_idx ON delivery_attempts (call_id) WHERE error IS NOT NULL;
