package retention_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/calldoc"
	"github.com/postcall/postcall/retention"
	"github.com/postcall/postcall/store"
)

const day = 24 * time.Hour

// TestPurgeAndHardDeleteMixedAges runs the purge and the hard delete over a
// few hundred calls of mixed ages, three agents (a plan's own periods, the
// defaults, an agent on hold), call holds and soft deletes, then checks
// every call's fate, the counts, the audit, the bucket, and that nothing of
// a purged or deleted call can be read back from any table.
func TestPurgeAndHardDeleteMixedAges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	b.applyPlan(t, "short", "retention: {purge_after_days: 7, hard_delete_after_days: 3}")
	b.applyPlan(t, "dflt", "")
	b.applyPlan(t, "frozen", "")
	_, err := b.svc.HoldAgent(ctx, "frozen", "case 11")
	require.NoError(t, err)

	agents := []string{"short", "dflt", "frozen"}
	purgeDays := map[string]float64{"short": 7, "dflt": 30, "frozen": 30}
	hardDays := map[string]float64{"short": 3, "dflt": 30, "frozen": 30}
	const n = 300
	endedAgo := func(i int) float64 { return float64((i*7)%60) + 0.5 }
	deletedAgo := func(i int) float64 { return float64((i*13)%45) + 0.5 }
	softDeleted := func(i int) bool { return i%4 == 0 }
	callHeld := func(i int) bool { return i%17 == 0 }
	calls := b.seedMany(t, n, func(i int) (string, seedOpts) {
		return agents[i%3], seedOpts{endedAgo: time.Duration(endedAgo(i) * float64(day)), recording: i%2 == 0}
	})
	for i, c := range calls {
		if callHeld(i) {
			_, err := b.svc.HoldCall(ctx, c.callID, "case 12")
			require.NoError(t, err)
		}
		if softDeleted(i) {
			_, err := b.pool.Exec(ctx, `UPDATE calls SET deleted_at = $2 WHERE id = $1`, c.id,
				b.now.Add(-time.Duration(deletedAgo(i)*float64(day))))
			require.NoError(t, err)
		}
	}

	var wantPurged, wantHeld, wantDeleted, wantDeleteHeld []*seeded
	var kept []*seeded // neither purged nor deleted
	for i, c := range calls {
		held := c.agentID == "frozen" || callHeld(i)
		purgeDue := endedAgo(i) > purgeDays[c.agentID]
		deleteDue := softDeleted(i) && deletedAgo(i) > hardDays[c.agentID]
		switch {
		case purgeDue && held:
			wantHeld = append(wantHeld, c)
		case purgeDue:
			wantPurged = append(wantPurged, c)
		}
		switch {
		case deleteDue && held:
			wantDeleteHeld = append(wantDeleteHeld, c)
		case deleteDue:
			wantDeleted = append(wantDeleted, c)
		}
		if (!purgeDue || held) && (!deleteDue || held) {
			kept = append(kept, c)
		}
	}
	require.NotEmpty(t, wantPurged)
	require.NotEmpty(t, wantHeld)
	require.NotEmpty(t, wantDeleted)
	require.NotEmpty(t, wantDeleteHeld)

	purge, err := b.svc.Purge(ctx, retention.RunOptions{})
	require.NoError(t, err)
	require.Equal(t, retention.StatusFinished, purge.Status)
	require.Equal(t, len(wantPurged), purge.Purged)
	require.Equal(t, len(wantHeld), purge.SkippedHold)
	byAgent := map[string]retention.AgentReport{}
	for _, a := range purge.Agents {
		byAgent[a.AgentID] = a
	}
	require.Equal(t, retention.AgentReport{AgentID: "short", AfterDays: 7, FromPlan: true, Cutoff: b.now.AddDate(0, 0, -7),
		Done: byAgent["short"].Done, SkippedHold: byAgent["short"].SkippedHold}, byAgent["short"])
	require.False(t, byAgent["dflt"].FromPlan)
	require.Equal(t, 30, byAgent["dflt"].AfterDays)
	require.True(t, byAgent["frozen"].OnHold)
	require.Zero(t, byAgent["frozen"].Done)

	hard, err := b.svc.HardDelete(ctx, retention.RunOptions{})
	require.NoError(t, err)
	require.Equal(t, len(wantDeleted), hard.Deleted)
	require.Equal(t, len(wantDeleteHeld), hard.SkippedHold)

	for _, c := range wantPurged {
		got, err := store.GetCall(ctx, b.pool, c.id.String())
		if errors.Is(err, store.ErrNotFound) {
			continue // purged, then hard-deleted
		}
		require.NoError(t, err)
		require.True(t, got.IsPurged, c.callID)
		require.NotNil(t, got.PurgedAt)
	}
	for _, c := range wantDeleted {
		_, err := store.GetCall(ctx, b.pool, c.callID)
		require.ErrorIs(t, err, store.ErrNotFound, "hard-deleted %s must be not found", c.callID)
		var refs int
		require.NoError(t, b.pool.QueryRow(ctx, `
			SELECT (SELECT count(*) FROM analysis_runs WHERE call_id = $1) + (SELECT count(*) FROM llm_requests WHERE call_id = $1)
			     + (SELECT count(*) FROM deliveries WHERE call_id = $1) + (SELECT count(*) FROM delivery_attempts WHERE call_id = $1)`,
			c.id).Scan(&refs))
		require.Zero(t, refs, "everything that references %s goes with it", c.callID)
	}
	for _, c := range append(append([]*seeded{}, wantHeld...), wantDeleteHeld...) {
		got, err := store.GetCall(ctx, b.pool, c.id.String())
		require.NoError(t, err, "held %s is kept", c.callID)
		require.False(t, got.IsPurged, "held %s keeps its data", c.callID)
	}

	// The bucket: objects of purged and deleted calls go, the others stay.
	deleted := b.drain(t)
	gone := map[string]bool{}
	for _, c := range append(append([]*seeded{}, wantPurged...), wantDeleted...) {
		if c.recordingKey != "" && !gone[c.recordingKey] {
			gone[c.recordingKey] = true
			require.False(t, b.s3.exists(t, c.recordingKey), "recording of %s deleted", c.callID)
		}
	}
	require.Equal(t, len(gone), deleted)
	for _, c := range kept {
		if c.recordingKey != "" {
			require.True(t, b.s3.exists(t, c.recordingKey), "recording of kept %s stays", c.callID)
		}
	}
	pending, err := retention.PendingRecordingDeletions(ctx, b.pool)
	require.NoError(t, err)
	require.Zero(t, pending.Objects, "every queued key confirmed gone and forgotten")
	for _, rep := range []*retention.Report{purge, hard} {
		run, err := retention.GetRun(ctx, b.pool, rep.RunID)
		require.NoError(t, err)
		require.Equal(t, run.ObjectsQueued, run.ObjectsDeleted, "run %d", run.ID)
		require.Equal(t, rep.Purged, run.Purged)
		require.Equal(t, rep.Deleted, run.Deleted)
		require.Equal(t, rep.SkippedHold, run.SkippedHold)
	}

	// Nothing personal of a purged or deleted call can be read back, from
	// any table; a kept call still has all of it (the scan works).
	gonePeople := append(append([]*seeded{}, wantPurged...), wantDeleted...)
	require.Empty(t, b.found(t, markersOf(gonePeople)))
	keptMarkers := markersOf(kept)
	require.Len(t, b.found(t, keptMarkers), len(keptMarkers))

	// A purged call keeps identity, timings, ended reason, disposition and
	// scores; pii and summary fields are null in every run, evidence too.
	var survivor *seeded
	for _, c := range wantPurged {
		if _, err := store.GetCall(ctx, b.pool, c.id.String()); err == nil && c.recordingKey != "" {
			survivor = c
			break
		}
	}
	require.NotNil(t, survivor)
	got, err := store.GetCall(ctx, b.pool, survivor.id.String())
	require.NoError(t, err)
	doc, err := calldoc.Build(ctx, b.pool, got, calldoc.Options{})
	require.NoError(t, err)
	js, err := json.Marshal(doc)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(js, &m))
	for _, k := range []string{"transcript", "phone_number", "customer_name", "customer_request", "recording",
		"contact_data", "function_output", "call_summary"} {
		require.Nil(t, m[k], k)
	}
	require.NotContains(t, m, "tool_calls")
	require.Equal(t, true, m["is_purged"])
	require.Equal(t, survivor.callID, m["call_id"])
	require.Equal(t, "customer-ended-call", m["ended_reason"])
	require.Equal(t, "agreed", m["disposition"])
	require.Equal(t, float64(8), m["final_score"])
	require.Equal(t, float64(95), m["duration"])
	fields := m["analysis"].(map[string]any)["fields"].(map[string]any)
	require.Equal(t, map[string]any{"summary": nil, "outcome": "agreed", "email": nil, "topic": "pricing"}, fields)
	items := m["qc"].(map[string]any)["items"].([]any)
	require.Equal(t, map[string]any{"id": "greeting", "passed": true, "evidence": nil}, items[0])

	// Its audit row says what went, by name only, and why.
	audit, err := retention.CallAudit(ctx, b.pool, survivor.callID)
	require.NoError(t, err)
	require.Len(t, audit, 1)
	require.Equal(t, retention.ActionPurge, audit[0].Action)
	require.Equal(t, retention.ReasonPolicy, audit[0].Reason)
	require.Equal(t, purge.RunID, *audit[0].RunID)
	require.ElementsMatch(t, []string{"transcript", "phone_number", "customer_name", "customer_request", "recording",
		"contact_data", "function_output", "call_summary", "extra.tool_calls", "analysis.email", "analysis.summary",
		"qc.evidence", "run_errors", "llm_request_errors", "delivery_errors"}, audit[0].Removed)
	var purgeRows, deleteRows int
	require.NoError(t, b.pool.QueryRow(ctx, `
		SELECT count(*) FILTER (WHERE action = 'purge'), count(*) FILTER (WHERE action = 'hard_delete')
		FROM retention_audit WHERE run_id IN ($1, $2)`, purge.RunID, hard.RunID).Scan(&purgeRows, &deleteRows))
	require.Equal(t, len(wantPurged), purgeRows)
	require.Equal(t, len(wantDeleted), deleteRows)
	for _, c := range wantDeleted {
		audit, err := retention.CallAudit(ctx, b.pool, c.id.String())
		require.NoError(t, err, "the audit outlives the call")
		require.Equal(t, retention.ActionHardDelete, audit[len(audit)-1].Action)
	}

	// A rerun finds nothing to do and counts the same holds.
	again, err := b.svc.Purge(ctx, retention.RunOptions{})
	require.NoError(t, err)
	require.Zero(t, again.Purged)
	require.Equal(t, len(wantHeld), again.SkippedHold)
	hardAgain, err := b.svc.HardDelete(ctx, retention.RunOptions{})
	require.NoError(t, err)
	require.Zero(t, hardAgain.Deleted)
	require.Zero(t, hardAgain.ObjectsQueued)
	require.Zero(t, b.drain(t))
}

// TestDryRunChangesNothing compares every table before and after dry runs
// of each kind, and checks the dry run predicted the real run.
func TestDryRunChangesNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	b.applyPlan(t, "dry", "retention: {purge_after_days: 10, hard_delete_after_days: 1}")
	calls := b.seedMany(t, 60, func(i int) (string, seedOpts) {
		return "dry", seedOpts{endedAgo: time.Duration(i) * day / 2, recording: i%3 == 0}
	})
	_, err := b.svc.HoldCall(ctx, calls[50].callID, "")
	require.NoError(t, err)
	_, err = b.pool.Exec(ctx, `UPDATE calls SET deleted_at = $2 WHERE id = $1`, calls[3].id, b.now.Add(-2*day))
	require.NoError(t, err)

	before := b.snapshot(t)
	dryPurge, err := b.svc.Purge(ctx, retention.RunOptions{DryRun: true})
	require.NoError(t, err)
	dryHard, err := b.svc.HardDelete(ctx, retention.RunOptions{DryRun: true})
	require.NoError(t, err)
	dryCall, err := b.svc.EraseCall(ctx, calls[1].callID, retention.RunOptions{DryRun: true})
	require.NoError(t, err)
	dryPhone, err := b.svc.ErasePhone(ctx, calls[2].phone, retention.RunOptions{DryRun: true})
	require.NoError(t, err)
	require.Equal(t, before, b.snapshot(t), "a dry run changes no table but retention_runs")
	require.Equal(t, 1, dryCall.Purged)
	require.Equal(t, 1, dryPhone.Purged)
	require.Positive(t, dryPurge.Purged)
	require.Equal(t, 1, dryPurge.SkippedHold)
	require.Equal(t, 1, dryHard.Deleted)

	runs, err := retention.ListRuns(ctx, b.pool, 10)
	require.NoError(t, err)
	require.Len(t, runs, 4)
	for _, r := range runs {
		require.True(t, r.DryRun)
		require.Equal(t, retention.StatusFinished, r.Status)
	}

	realPurge, err := b.svc.Purge(ctx, retention.RunOptions{})
	require.NoError(t, err)
	require.Equal(t, dryPurge.Purged, realPurge.Purged)
	require.Equal(t, dryPurge.SkippedHold, realPurge.SkippedHold)
	require.Equal(t, dryPurge.ObjectsQueued, realPurge.ObjectsQueued)
	realHard, err := b.svc.HardDelete(ctx, retention.RunOptions{})
	require.NoError(t, err)
	require.Equal(t, dryHard.Deleted, realHard.Deleted)
}

// snapshot returns every table of the schema but retention_runs as text.
func (b *testBundle) snapshot(t *testing.T) map[string][]string {
	t.Helper()
	ctx := context.Background()
	rows, err := b.pool.Query(ctx, `
		SELECT table_name FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' AND table_name <> 'retention_runs'`)
	require.NoError(t, err)
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	out := map[string][]string{}
	for _, table := range tables {
		rows, err := b.pool.Query(ctx, `SELECT t::text FROM `+pgx.Identifier{table}.Sanitize()+` t ORDER BY 1`)
		require.NoError(t, err)
		out[table], err = pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
	}
	return out
}

// TestCrashAndResume cancels a purge in the middle, checks the interrupted
// run's record matches what it committed, and that the next run finishes
// the job with exact totals and one audit row per call.
func TestCrashAndResume(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	b.applyPlan(t, "crash", "retention: {purge_after_days: 1}")
	const n = 200
	b.seedMany(t, n, func(i int) (string, seedOpts) {
		return "crash", seedOpts{endedAgo: 2*day + time.Duration(i)*time.Minute, recording: i%2 == 0}
	})
	b.svc.BatchSize = 10
	b.svc.Pause = 15 * time.Millisecond

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		// Kill the run once a few batches are in.
		for runCtx.Err() == nil {
			var purged int
			_ = b.pool.QueryRow(ctx, `SELECT COALESCE(max(purged), 0) FROM retention_runs`).Scan(&purged)
			if purged >= 40 {
				cancel()
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	first, err := b.svc.Purge(runCtx, retention.RunOptions{})
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, retention.StatusInterrupted, first.Status)
	require.Positive(t, first.Purged)
	require.Less(t, first.Purged, n)

	var purgedNow int
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM calls WHERE is_purged`).Scan(&purgedNow))
	run, err := retention.GetRun(ctx, b.pool, first.RunID)
	require.NoError(t, err)
	require.Equal(t, retention.StatusInterrupted, run.Status)
	require.Equal(t, purgedNow, run.Purged, "the run's count is what it committed")
	require.Equal(t, first.Purged, run.Purged)

	second, err := b.svc.Purge(ctx, retention.RunOptions{})
	require.NoError(t, err)
	require.Equal(t, n, first.Purged+second.Purged)
	var auditRows, distinctCalls, queued int
	require.NoError(t, b.pool.QueryRow(ctx, `
		SELECT count(*), count(DISTINCT call_uuid), (SELECT sum(objects_queued) FROM retention_runs)
		FROM retention_audit WHERE action = 'purge'`).Scan(&auditRows, &distinctCalls, &queued))
	require.Equal(t, n, auditRows)
	require.Equal(t, n, distinctCalls)
	require.Equal(t, n/2, queued)
	require.Equal(t, n/2, b.drain(t))

	// A run whose process died (still "running", no batch for long) is
	// marked interrupted by the next run.
	var dead int64
	require.NoError(t, b.pool.QueryRow(ctx, `
		INSERT INTO retention_runs (kind, trigger, started_at, updated_at) VALUES ('purge', 'schedule', now() - interval '2 hours', now() - interval '2 hours')
		RETURNING id`).Scan(&dead))
	_, err = b.svc.Purge(ctx, retention.RunOptions{})
	require.NoError(t, err)
	run, err = retention.GetRun(ctx, b.pool, dead)
	require.NoError(t, err)
	require.Equal(t, retention.StatusInterrupted, run.Status)
	require.NotNil(t, run.FinishedAt)
}

// TestBudgetSlicesARun: a run out of budget stops after a batch with
// status partial, and the following runs go on until done.
func TestBudgetSlicesARun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	b.applyPlan(t, "slice", "retention: {purge_after_days: 0}")
	b.seedMany(t, 25, func(int) (string, seedOpts) { return "slice", seedOpts{endedAgo: time.Hour} })
	b.svc.BatchSize = 10
	var statuses []string
	total := 0
	for range 5 {
		rep, err := b.svc.Purge(ctx, retention.RunOptions{Budget: time.Nanosecond, Trigger: retention.TriggerSchedule})
		require.NoError(t, err)
		statuses = append(statuses, rep.Status)
		total += rep.Purged
		if rep.Status == retention.StatusFinished {
			break
		}
	}
	require.Equal(t, []string{"partial", "partial", "finished"}, statuses)
	require.Equal(t, 25, total)
}

// TestOnlyResumableRunsCommitAsynchronously: the batches of the scheduled
// purge commit without waiting for the disk (a lost batch is redone by the
// next run), those of an erasure request durably, before it answers.
func TestOnlyResumableRunsCommitAsynchronously(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	b.applyPlan(t, "commit", "retention: {purge_after_days: 0}")
	calls := b.seedMany(t, 3, func(int) (string, seedOpts) {
		return "commit", seedOpts{endedAgo: time.Hour, recording: true}
	})
	enqueue := b.svc.Queue
	var settings []string
	b.svc.Queue = queueFunc(func(ctx context.Context, tx pgx.Tx, batches []int64) error {
		var s string
		if err := tx.QueryRow(ctx, `SELECT current_setting('synchronous_commit')`).Scan(&s); err != nil {
			return err
		}
		settings = append(settings, s)
		return enqueue.EnqueueRecordingDeletions(ctx, tx, batches)
	})

	_, err := b.svc.EraseCall(ctx, calls[0].callID, retention.RunOptions{})
	require.NoError(t, err)
	require.Equal(t, []string{"on"}, settings, "an erasure request is durable when it answers")
	require.Equal(t, 1, b.drain(t), "an empty outbox: the purge's requeue enqueues nothing")

	settings = nil
	rep, err := b.svc.Purge(ctx, retention.RunOptions{})
	require.NoError(t, err)
	require.Equal(t, 2, rep.Purged)
	require.Equal(t, []string{"off"}, settings)
}
