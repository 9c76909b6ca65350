-- Worker heartbeats (issue 12): every worker process records its River
-- client id here every few seconds, so that the jobs a dead process left
-- running are made available again within POSTCALL_WORKER_DEAD_AFTER instead
-- of POSTCALL_RESCUE_AFTER. Times are the database's clock, so hosts whose
-- clocks disagree still agree on who is dead.
CREATE TABLE worker_heartbeats (
    -- River's client id (river.Config.ID): what river_job.attempted_by holds.
    client_id text PRIMARY KEY,
    hostname text NOT NULL,
    pid integer NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    beat_at timestamptz NOT NULL DEFAULT now(),
    -- Set when the process stopped (gracefully or past its stop timeout)
    -- or was declared dead and its jobs rescued.
    stopped_at timestamptz,
    -- Jobs rescued from this process after it stopped beating.
    rescued_jobs integer NOT NULL DEFAULT 0
);

-- The rescue pass reads the running jobs by their latest attempt's client.
CREATE INDEX river_job_running_attempted_by_idx ON river_job ((attempted_by[cardinality(attempted_by)]))
    WHERE state = 'running';
