-- search= by a number's digits (store.ListCalls). Migration 004 matched a
-- term like "555-000-7" with LIKE '%5550007%' against a trigram index over
-- name, number and summary; the trigrams of a number's digits ("555", "000")
-- are in nearly every number, so that index returned almost every call for a
-- recheck (~320 ms on 100k calls, issue 11's console bench).
--
-- A normalised number (phone_key, "+" and 7 to 15 digits) is now searched by
-- its digits through an exact index instead: phone_digit_substrings lists
-- every run of 3 or more consecutive digits of the key (at most 91 for 15
-- digits), and a GIN index over that array answers "the digits contain
-- 5550007" with exactly the calls whose number does, however common its
-- trigrams. No extension is needed.
--
-- The expression must stay identical to store.phoneDigitsExpr.
--
-- COST is what a call costs (~50 us, about 2000 operator costs; the default
-- of 100 is for a trivial function): at the default, the planner would rather
-- walk calls_created_at_idx newest first evaluating the function on each call
-- until a page is full, which reads the whole table when the matching calls
-- are old (4.8 s on 100k calls, against 8 ms through the index).
CREATE FUNCTION phone_digit_substrings(phone_key text) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE COST 2000
AS $$
    SELECT array_agg(DISTINCT substr(d, i, n))
    FROM (SELECT ltrim(phone_key, '+') AS d) AS k,
         generate_series(1, length(d)) AS i,
         generate_series(3, length(d) - i + 1) AS n
$$;

CREATE INDEX calls_phone_digits_idx ON calls USING gin (phone_digit_substrings(phone_key));

-- The trigram index no longer holds the numbers that have a key (the digits
-- index answers those); it keeps customer name, summary and a number that
-- has no key ("anonymous", a SIP address), so that text search still finds
-- them. Rebuilt under the same name, where pg_trgm is installed (see 004).
--
-- The indexed expression must stay identical to store.searchExpr.
DO $$
DECLARE
    -- regnamespace's text is the schema's name, quoted where it needs it.
    trgm_schema text := (SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'pg_trgm');
BEGIN
    DROP INDEX IF EXISTS calls_search_trgm_idx;
    IF trgm_schema IS NOT NULL THEN
        EXECUTE format($sql$
            CREATE INDEX calls_search_trgm_idx ON calls USING gin (
                (coalesce(customer_name, '') || E'\n' ||
                 CASE WHEN phone_key IS NULL THEN coalesce(phone_number, '') ELSE '' END || E'\n' ||
                 coalesce(call_summary, ''))
                %s.gin_trgm_ops)
        $sql$, trgm_schema);
    END IF;
END
$$;
