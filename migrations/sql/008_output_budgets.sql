-- Output budgets and service tiers (issue 14): what each LLM request was
-- sent with and how it ended, so that a plan version's budget is sized from
-- what its answers take, and a cut-off answer's second request or a flex
-- request served at the default tier shows on its run. Rows from before
-- have nulls.
ALTER TABLE llm_requests
    ADD COLUMN max_tokens integer,
    ADD COLUMN finish_reason text,
    ADD COLUMN service_tier text,
    ADD COLUMN flex_fallback boolean NOT NULL DEFAULT false;

-- The budget of a plan version and kind is read from its latest runs.
CREATE INDEX analysis_runs_plan_kind_idx ON analysis_runs (agent_id, plan_version, kind, id DESC);
