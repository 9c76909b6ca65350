-- Evidence (issue 13): an analysis run's checked quotes, per field that
-- keeps evidence and has a value ({quote, turn, verified}, and under require
-- the value withheld from output), and the fields or QC items whose quote
-- was not found, in plan order. QC items carry their own verified and turn
-- in output. Both null for runs of plans without evidence, and for runs from
-- before.
ALTER TABLE analysis_runs
    ADD COLUMN evidence jsonb,
    ADD COLUMN unverified text[];
