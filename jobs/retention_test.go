package jobs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rclone/gofakes3"
	"github.com/riverqueue/river"
	"github.com/robfig/cron/v3"
	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/agent"
	"github.com/postcall/postcall/analysis"
	"github.com/postcall/postcall/analysis/openaitest"
	"github.com/postcall/postcall/call"
	"github.com/postcall/postcall/internal/dbtest"
	"github.com/postcall/postcall/jobs"
	"github.com/postcall/postcall/pipeline"
	"github.com/postcall/postcall/recording"
	"github.com/postcall/postcall/recording/s3test"
	"github.com/postcall/postcall/retention"
	"github.com/postcall/postcall/store"
)

// keeperPlan purges at every run (purge_after_days 0).
const keeperPlan = `
id: keeper
analysis:
  prompt: "Review the call."
  fields:
    - {name: summary, type: string}
    - {name: outcome, type: enum, values: [agreed, declined]}
    - {name: email, type: string, pii: true}
  summary_field: summary
  disposition_field: outcome
qc:
  prompt: "Judge the agent."
  checklist:
    - {id: greeting, description: "Introduced itself"}
retention: {purge_after_days: 0, hard_delete_after_days: 0}
`

const (
	s3Bucket = "recordings"
	s3Key    = "AKIDJOBSTEST"
	s3Secret = "jobs-test-secret"
)

type retentionBundle struct {
	pool      *pgxpool.Pool
	schema    string
	s3        *s3test.Server
	retention *retention.Service
	pipeline  *pipeline.Service
	logs      *logCapture
	llm       *openaitest.Server
	queue     *jobs.Queue
}

// setupRetention gives a test a schema of its own, a fake bucket, a model
// that answers with personal data taken from the call, and the retention
// service; startWorker runs a River client with all of it.
func setupRetention(t *testing.T) *retentionBundle {
	t.Helper()
	ctx := context.Background()
	pool, schema := dbtest.Schema(t)
	srv := s3test.NewServer(t, s3test.Options{Bucket: s3Bucket, AccessKey: s3Key, SecretKey: s3Secret})
	recordings, err := recording.New(ctx, recording.Config{
		Bucket: s3Bucket, Endpoint: srv.URL, Region: "us-east-1", ForcePathStyle: true, AccessKeyID: s3Key,
		SecretAccessKey: s3Secret, HTTPClient: srv.Client(), DeleteAttempts: 1,
	})
	require.NoError(t, err)

	tagPattern := regexp.MustCompile(`TRANSCRIPT-(keeper-\d{5})`)
	llm := openaitest.NewServer(t, openaitest.WithDefault(func(req *openaitest.Request) openaitest.Reply {
		tag := "unknown-00000"
		if m := tagPattern.FindSubmatch(req.Body); m != nil {
			tag = string(m[1])
		}
		var schema struct {
			Properties map[string]any `json:"properties"`
		}
		_ = json.Unmarshal(req.Schema(), &schema)
		delay := time.Duration(len(tag)%7) * 3 * time.Millisecond
		if _, ok := schema.Properties["greeting"]; ok {
			return openaitest.Reply{Delay: delay, Content: fmt.Sprintf(`{"greeting": {"passed": true, "evidence": "said EVIDENCE-%s"}}`, tag)}
		}
		return openaitest.Reply{Delay: delay, Content: fmt.Sprintf(
			`{"summary": "SUMMARY-%s", "outcome": "agreed", "email": "PII-%s@example.com"}`, tag, tag)}
	}))
	// No client-side RPM/TPM limits (analysis tests them): the default TPM
	// reserves each request's output budget and would hold these tests to
	// about a dozen requests a minute.
	model, err := analysis.NewOpenAI(analysis.OpenAIConfig{BaseURL: llm.URL, APIKey: llm.APIKey, MaxRetryWait: time.Millisecond,
		RPM: -1, TPM: -1})
	require.NoError(t, err)
	queue, err := jobs.NewQueue(pool, schema, nil)
	require.NoError(t, err)

	plans, err := agent.ParsePlans([]byte(keeperPlan))
	require.NoError(t, err)
	_, _, err = store.ApplyPlan(ctx, pool, &plans[0])
	require.NoError(t, err)
	return &retentionBundle{
		pool: pool, schema: schema, s3: srv, logs: &logCapture{}, llm: llm,
		pipeline: &pipeline.Service{Analyzer: &analysis.Analyzer{Model: model, DefaultModel: "gpt-4.1-mini"}},
		retention: &retention.Service{DB: pool, PurgeAfterDays: 30, HardDeleteAfterDays: 30, BatchSize: 7,
			Recordings: recordings, Queue: queue},
		queue: queue,
	}
}

// startWorker starts a working River client whose periodic jobs only run
// on start (their schedule is yearly).
func (b *retentionBundle) startWorker(t *testing.T) *river.Client[pgx.Tx] {
	t.Helper()
	client, err := jobs.NewClient(jobs.ClientConfig{
		Pool: b.pool, Pipeline: b.pipeline, Retention: b.retention, Schema: b.schema,
		PurgeSchedule: "0 0 1 1 *", RetentionSchedule: "CRON_TZ=Europe/Paris 0 0 1 1 *",
		FetchPollInterval: 50 * time.Millisecond, SoftStopTimeout: time.Second,
		Logger: slog.New(b.logs),
	})
	require.NoError(t, err)
	require.NoError(t, client.Start(context.Background()))
	t.Cleanup(func() { stopClient(client) })
	return client
}

func stopClient(client *river.Client[pgx.Tx]) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = client.Stop(ctx)
}

var keeperSeq atomic.Int64

// ingest stores a call of agent keeper with personal data (markers are
// unique to it) and enqueues its processing. It returns the call's id and
// markers.
func ingestKeeper(t *testing.T, ctx context.Context, e *pipeline.Calls, s3 *s3test.Server) (string, []string) {
	t.Helper()
	tag := fmt.Sprintf("keeper-%05d", keeperSeq.Add(1))
	phone := fmt.Sprintf("+1666%07d", keeperSeq.Load())
	dur := 80.0
	rec := &call.Record{
		CallID: "call-" + tag, AgentID: "keeper", EndedAt: time.Now().Add(-time.Hour), EndedReason: "customer-ended-call",
		Duration: &dur, PhoneNumber: phone, CustomerName: "NAME-" + tag, RecordingKey: "rec/" + tag + ".wav",
		Transcript: []call.Turn{
			{Role: call.RoleAgent, Text: "Hello from ACME, may I record?"},
			{Role: call.RoleUser, Text: "Yes. I am TRANSCRIPT-" + tag},
		},
	}
	s3.Put(t, rec.RecordingKey, "audio")
	res, err := e.Ingest(ctx, rec)
	require.NoError(t, err)
	return res.ID.String(), []string{"TRANSCRIPT-" + tag, "SUMMARY-" + tag, "PII-" + tag, "EVIDENCE-" + tag, "NAME-" + tag,
		phone, rec.RecordingKey}
}

func (b *retentionBundle) exists(t *testing.T, key string) bool {
	t.Helper()
	return b.s3.Exists(t, key)
}

// readable returns the markers some row of some table of the schema still
// holds.
func (b *retentionBundle) readable(t *testing.T, markers []string) []string {
	t.Helper()
	ctx := context.Background()
	rows, err := b.pool.Query(ctx, `
		SELECT table_name FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`)
	require.NoError(t, err)
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	var all strings.Builder
	for _, table := range tables {
		rows, err := b.pool.Query(ctx, `SELECT t::text FROM `+pgx.Identifier{table}.Sanitize()+` t`)
		require.NoError(t, err)
		texts, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		for _, s := range texts {
			all.WriteString(s)
			all.WriteByte('\n')
		}
	}
	text := all.String()
	var found []string
	for _, m := range markers {
		if strings.Contains(text, m) {
			found = append(found, m)
		}
	}
	return found
}

// TestRetentionPeriodicJobsRunOnStartOncePerPeriod: a worker registers the
// purge and the hard delete as periodic jobs that run when it starts; a
// restart within the period enqueues nothing new.
func TestRetentionPeriodicJobsRunOnStartOncePerPeriod(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupRetention(t)
	client := b.startWorker(t)

	countRuns := func() map[string]int {
		rows, err := b.pool.Query(ctx, `SELECT kind || '/' || trigger || '/' || status FROM retention_runs`)
		require.NoError(t, err)
		runs, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		out := map[string]int{}
		for _, r := range runs {
			out[r]++
		}
		return out
	}
	want := map[string]int{"purge/schedule/finished": 1, "hard_delete/schedule/finished": 1}
	require.Eventually(t, func() bool { return maps.Equal(want, countRuns()) }, 15*time.Second, 20*time.Millisecond)

	// Restart: the new leader's RunOnStart insert is a duplicate within the
	// period and adds no run.
	stopClient(client)
	require.Equal(t, 1, b.logs.count("Inserted RunOnStart jobs"))
	b.startWorker(t)
	require.Eventually(t, func() bool { return b.logs.count("Inserted RunOnStart jobs") == 2 }, 15*time.Second, 20*time.Millisecond)
	time.Sleep(300 * time.Millisecond)
	require.Equal(t, want, countRuns())
	var jobsInserted int
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE kind IN ('postcall.purge', 'postcall.hard_delete')`).Scan(&jobsInserted))
	require.Equal(t, 2, jobsInserted)
}

func TestRetentionPeriodicJobsRejectBadSchedules(t *testing.T) {
	t.Parallel()
	_, err := jobs.RetentionPeriodicJobs("every night", "", time.Now())
	require.ErrorContains(t, err, "POSTCALL_PURGE_SCHEDULE")
	periodic, err := jobs.RetentionPeriodicJobs("", "CRON_TZ=America/New_York 30 3 * * *", time.Now())
	require.NoError(t, err)
	require.Len(t, periodic, 2)

	for expr, want := range map[string]time.Duration{
		"0 3 * * *": 24 * time.Hour, "*/15 * * * *": 15 * time.Minute, "0 * * * *": time.Hour,
		"* * * * *": time.Minute, "0 0 * * 0": 24 * time.Hour,
	} {
		schedule, err := cron.ParseStandard(expr)
		require.NoError(t, err)
		require.Equal(t, want, jobs.SchedulePeriod(schedule, time.Now()), expr)
	}
}

// TestRecordingDeletionJobRetriesUntilConfirmed: the purge enqueues the
// deletion job in its transaction; the worker deletes the objects and
// retries the one the bucket refuses until it is gone.
func TestRecordingDeletionJobRetriesUntilConfirmed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupRetention(t)
	b.pipeline.Analyzer = nil // the runs wait; this test is about recordings
	b.startWorker(t)
	e := &pipeline.Calls{DB: b.pool, Pipeline: b.pipeline, Queue: b.queue}
	var keys []string
	for range 3 {
		_, markers := ingestKeeper(t, ctx, e, b.s3)
		keys = append(keys, markers[len(markers)-1])
	}
	b.s3.FailDeletes(keys[1], gofakes3.ErrInternal, 1)

	rep, err := b.retention.Purge(ctx, retention.RunOptions{})
	require.NoError(t, err)
	require.Equal(t, 3, rep.Purged)
	require.Equal(t, 3, rep.ObjectsQueued)
	require.Eventually(t, func() bool {
		p, err := retention.PendingRecordingDeletions(ctx, b.pool)
		require.NoError(t, err)
		return p.Objects == 0
	}, 20*time.Second, 50*time.Millisecond)
	for _, k := range keys {
		require.False(t, b.exists(t, k), k)
	}
	run, err := retention.GetRun(ctx, b.pool, rep.RunID)
	require.NoError(t, err)
	require.Equal(t, 3, run.ObjectsDeleted)
}

// TestPurgeWhileWorkerProcessesCalls runs the purge over and over while a
// worker ingests and analyses calls whose model output repeats their
// personal data; when everything has settled, nothing of any call is left.
func TestPurgeWhileWorkerProcessesCalls(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupRetention(t)
	b.startWorker(t)
	e := &pipeline.Calls{DB: b.pool, Pipeline: b.pipeline, Queue: b.queue}

	stop := make(chan struct{})
	var purges sync.WaitGroup
	purges.Add(1)
	go func() {
		defer purges.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			_, err := b.retention.Purge(ctx, retention.RunOptions{Trigger: retention.TriggerSchedule})
			if err != nil {
				t.Errorf("purge: %v", err)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	var ids, markers []string
	for range 30 {
		id, m := ingestKeeper(t, ctx, e, b.s3)
		ids = append(ids, id)
		markers = append(markers, m...)
		time.Sleep(3 * time.Millisecond)
	}
	for _, id := range ids {
		require.Eventually(t, func() bool {
			c, err := store.GetCall(ctx, b.pool, id)
			require.NoError(t, err)
			return c.Done
		}, 30*time.Second, 20*time.Millisecond, "call %s never finished", id)
	}
	close(stop)
	purges.Wait()
	_, err := b.retention.Purge(ctx, retention.RunOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		p, err := retention.PendingRecordingDeletions(ctx, b.pool)
		require.NoError(t, err)
		return p.Objects == 0
	}, 20*time.Second, 50*time.Millisecond)

	for _, id := range ids {
		c, err := store.GetCall(ctx, b.pool, id)
		require.NoError(t, err)
		require.True(t, c.IsPurged, id)
		require.Nil(t, c.CallSummary)
	}
	require.Empty(t, b.readable(t, markers), "personal data came back after a purge")
	require.Positive(t, b.llm.Len(), "some runs reached the model")
	var late, failedCalls int
	require.NoError(t, b.pool.QueryRow(ctx, `
		SELECT (SELECT count(*) FROM retention_audit WHERE reason = 'late_result'),
		       (SELECT count(*) FROM calls WHERE state = 'failed')`).Scan(&late, &failedCalls))
	t.Logf("%d model requests, %d late results purged, %d calls purged before their runs started", b.llm.Len(), late, failedCalls)
}

// logCapture is a slog handler that remembers messages.
type logCapture struct {
	mu   sync.Mutex
	msgs []string
}

func (l *logCapture) Enabled(context.Context, slog.Level) bool { return true }
func (l *logCapture) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, r.Message)
	return nil
}
func (l *logCapture) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logCapture) WithGroup(string) slog.Handler      { return l }

func (l *logCapture) count(substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, m := range l.msgs {
		if strings.Contains(m, substr) {
			n++
		}
	}
	return n
}
