-- The HTTP API's call listing (GET /v1/calls, store.ListCalls).

-- done=false lists the calls still in flight: a few among many. Without this
-- index the newest-first walk of calls_created_at_idx would read every done
-- call to fill a page.
CREATE INDEX calls_not_done_created_at_idx ON calls (created_at DESC, id DESC) WHERE NOT done;

-- search= matches a case-insensitive substring of customer name, phone number
-- and summary. A trigram GIN index (pg_trgm) answers that without reading
-- every call; pg_trgm ships with PostgreSQL and is a trusted extension (any
-- user with CREATE on the database may install it), but a server without the
-- contrib package, or a role without the privilege, cannot have it. Then the
-- migration goes on without the index, says so in a NOTICE, and search reads
-- the calls newest first until it fills a page: correct, slower on large
-- tables (narrow it with from/to or agent_id). Installing pg_trgm later and
-- running the CREATE INDEX below by hand adds the index.
--
-- The indexed expression must stay identical to store.searchExpr.
DO $$
DECLARE
    trgm_schema text;
BEGIN
    SELECT n.nspname INTO trgm_schema
    FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
    WHERE e.extname = 'pg_trgm';
    IF trgm_schema IS NULL THEN
        BEGIN
            CREATE EXTENSION pg_trgm;
            SELECT n.nspname INTO trgm_schema
            FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
            WHERE e.extname = 'pg_trgm';
        EXCEPTION WHEN OTHERS THEN
            RAISE NOTICE 'pg_trgm unavailable (%): GET /v1/calls?search= works without an index', SQLERRM;
        END;
    END IF;
    IF trgm_schema IS NOT NULL THEN
        EXECUTE format($sql$
            CREATE INDEX calls_search_trgm_idx ON calls USING gin (
                (coalesce(customer_name, '') || E'\n' || coalesce(phone_number, '') || E'\n' ||
                 coalesce(phone_key, '') || E'\n' || coalesce(call_summary, ''))
                %I.gin_trgm_ops)
        $sql$, trgm_schema);
    END IF;
END
$$;
