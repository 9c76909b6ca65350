-- Cost in dollars (issue 14): what each LLM request cost, in US dollars,
-- from the price table (built-in OpenAI rates or POSTCALL_PRICES_FILE) at
-- the tier that served it, computed when the request is stored. Null: the
-- model, or its tier, has no price; requests stored before this migration
-- are null too (unpriced, never guessed afterwards).
ALTER TABLE llm_requests ADD COLUMN cost_usd numeric;
