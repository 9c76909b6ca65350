package retention_test

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rclone/gofakes3"
	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/agent"
	"github.com/postcall/postcall/analysis"
	"github.com/postcall/postcall/call"
	"github.com/postcall/postcall/internal/dbtest"
	"github.com/postcall/postcall/recording"
	"github.com/postcall/postcall/recording/s3test"
	"github.com/postcall/postcall/retention"
	"github.com/postcall/postcall/store"
)

// planYAML is an agent with a pii field, a summary field, a non-personal
// free-text field and a QC checklist. %s is the id, %s the retention line.
const planYAML = `
id: %s
analysis:
  prompt: "Review the call."
  fields:
    - {name: summary, type: string}
    - {name: outcome, type: enum, values: [agreed, declined]}
    - {name: email, type: string, pii: true}
    - {name: topic, type: string}
  summary_field: summary
  disposition_field: outcome
qc:
  prompt: "Judge the agent."
  checklist:
    - {id: greeting, description: "Introduced itself"}
%s
`

const (
	testAccessKey = "AKIDRETENTIONTEST"
	testSecretKey = "retention-test-secret"
)

type testBundle struct {
	pool *pgxpool.Pool
	svc  *retention.Service
	s3   *fakeS3
	now  time.Time
}

// setup gives a test a migrated schema of its own, a fake S3 bucket and a
// Service on both. Deletion jobs are "enqueued" into a table of the schema,
// in the caller's transaction, the way River's InsertTx does: a rolled back
// batch leaves no job behind.
func setup(t *testing.T) *testBundle {
	t.Helper()
	ctx := context.Background()
	pool, _ := dbtest.Schema(t)
	_, err := pool.Exec(ctx, `CREATE TABLE test_deletion_jobs (batch bigint NOT NULL)`)
	require.NoError(t, err)
	b := &testBundle{pool: pool, s3: newFakeS3(t), now: time.Now().UTC().Truncate(time.Second)}
	b.svc = &retention.Service{
		DB:                  pool,
		PurgeAfterDays:      30,
		HardDeleteAfterDays: 30,
		BatchSize:           40,
		Recordings:          b.s3.store,
		Now:                 func() time.Time { return b.now },
		Queue: queueFunc(func(ctx context.Context, tx pgx.Tx, batches []int64) error {
			_, err := tx.Exec(ctx, `INSERT INTO test_deletion_jobs SELECT unnest($1::bigint[])`, batches)
			return err
		}),
	}
	return b
}

// queueFunc is a retention.Queue that calls itself.
type queueFunc func(ctx context.Context, tx pgx.Tx, batches []int64) error

func (f queueFunc) EnqueueRecordingDeletions(ctx context.Context, tx pgx.Tx, batches []int64) error {
	return f(ctx, tx, batches)
}

// drain works every enqueued deletion job once, as a worker would, and
// returns how many objects they deleted.
func (b *testBundle) drain(t *testing.T) int {
	t.Helper()
	ctx := context.Background()
	rows, err := b.pool.Query(ctx, `DELETE FROM test_deletion_jobs RETURNING batch`)
	require.NoError(t, err)
	batches, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	require.NoError(t, err)
	total := 0
	for _, batch := range batches {
		n, err := b.svc.DeleteRecordings(ctx, batch)
		require.NoError(t, err)
		total += n
	}
	return total
}

func (b *testBundle) applyPlan(t *testing.T, id, retentionLine string) {
	t.Helper()
	plans, err := agent.ParsePlans(fmt.Appendf(nil, planYAML, id, retentionLine))
	require.NoError(t, err)
	_, _, err = store.ApplyPlan(context.Background(), b.pool, &plans[0])
	require.NoError(t, err)
}

var callSeq atomic.Int64

// seeded is a stored call and the personal data it was given: every marker
// is unique to the call, so finding one anywhere means it was not removed.
type seeded struct {
	id           uuid.UUID
	callID       string
	agentID      string
	phone        string
	recordingKey string
	markers      []string
}

type seedOpts struct {
	endedAgo  time.Duration
	recording bool
}

// seedCall stores a finished call with personal data everywhere postcall
// keeps any: the record, an analysis run (pii, summary and free-text
// fields), a failed earlier run, a QC run with evidence, an LLM request and a
// delivery attempt with error texts; and its recording in the bucket.
func (b *testBundle) seedCall(t *testing.T, db store.DBTX, agentID string, o seedOpts) *seeded {
	t.Helper()
	ctx := context.Background()
	n := callSeq.Add(1)
	tag := fmt.Sprintf("%s-%05d", agentID, n)
	s := &seeded{callID: "call-" + tag, agentID: agentID, phone: fmt.Sprintf("+1555%07d", n)}
	mark := func(kind string) string {
		m := strings.ToUpper(kind) + "-" + tag
		s.markers = append(s.markers, m)
		return m
	}
	turn := func(role call.Role, text string) call.Turn { return call.Turn{Role: role, Text: text} }
	dur := 95.0
	rec := &call.Record{
		CallID: s.callID, AgentID: agentID, EndedAt: b.now.Add(-o.endedAgo), EndedReason: "customer-ended-call",
		Direction: "outbound", Duration: &dur, PhoneNumber: s.phone,
		CustomerName: mark("name"), CustomerRequest: mark("request"),
		Transcript: []call.Turn{
			turn(call.RoleAgent, "Hello, may I record this call?"),
			turn(call.RoleUser, "Yes. My account is "+mark("transcript")),
		},
		ContactData:    json.RawMessage(fmt.Sprintf(`{"crm_email": %q}`, mark("contact"))),
		FunctionOutput: json.RawMessage(fmt.Sprintf(`{"note": %q}`, mark("function"))),
		Extra: map[string]json.RawMessage{
			"tool_calls": json.RawMessage(fmt.Sprintf(`[{"name": "lookup", "args": %q}]`, mark("tool"))),
		},
	}
	s.markers = append(s.markers, s.phone)
	if o.recording {
		s.recordingKey = "rec/" + tag + ".wav"
		rec.RecordingKey = s.recordingKey
		b.s3.put(t, s.recordingKey)
	}
	id, inserted, err := store.InsertCall(ctx, db, store.NewCall{Record: rec, PhoneKey: call.NormalizePhone(s.phone)})
	require.NoError(t, err)
	require.True(t, inserted)
	s.id = id

	// A failed analysis run, the reanalysis that replaced it, and QC.
	failed, _, err := store.StartRuns(ctx, db, id, agentID, 1, store.TriggerIngest, true, false)
	require.NoError(t, err)
	_, err = store.FinishRunAndGetRuns(ctx, db, *failed, store.RunResult{Status: store.RunFailed, Error: "model quoted " + mark("runerror")})
	require.NoError(t, err)
	analysisRunID, _, err := store.StartRuns(ctx, db, id, agentID, 1, store.TriggerReanalyze, true, false)
	require.NoError(t, err)
	analysisRun := *analysisRunID
	summary := mark("summary")
	_, err = store.FinishRunAndGetRuns(ctx, db, analysisRun, store.RunResult{Status: store.RunSucceeded, Model: "gpt-4.1-mini",
		Output: map[string]any{"summary": summary, "outcome": "agreed", "email": mark("pii") + "@example.com", "topic": "pricing"}})
	require.NoError(t, err)
	score, passed := 8, true
	_, qcRunID, err := store.StartRuns(ctx, db, id, agentID, 1, store.TriggerIngest, false, true)
	require.NoError(t, err)
	qcRun := *qcRunID
	_, err = store.FinishRunAndGetRuns(ctx, db, qcRun, store.RunResult{Status: store.RunSucceeded, Model: "gpt-4.1-mini", Score: &score,
		Passed: &passed, Output: []map[string]any{{"id": "greeting", "passed": true, "evidence": "said " + mark("evidence")}}})
	require.NoError(t, err)
	run, err := store.GetRun(ctx, db, analysisRun)
	require.NoError(t, err)
	require.NoError(t, store.RecordRequests(ctx, db, run, []store.LLMRequest{
		{Purpose: "repair", Model: "gpt-4.1-mini", Usage: analysis.Usage{Prompt: 100, Completion: 20}, Error: "provider said " + mark("llmerror")},
	}))
	_, err = db.Exec(ctx, `UPDATE calls SET plan_version = 1, analysis_run_id = $2, qc_run_id = $3 WHERE id = $1`, id, analysisRun, qcRun)
	require.NoError(t, err)
	disposition, source := "agreed", "analysis"
	require.NoError(t, store.FinishCall(ctx, db, id, store.Outcome{State: store.StateDone, Disposition: &disposition,
		DispositionSource: &source, CallSummary: &summary, FinalScore: &score, QCPassed: &passed}))

	del := &store.Delivery{ID: store.NewDeliveryID(), CallID: id, AgentID: agentID, Integration: "crm", Type: "webhook", Status: store.DeliveryPending}
	require.NoError(t, store.CreateDelivery(ctx, db, del))
	_, err = store.RecordAttempt(ctx, db, del, store.AttemptRecord{Outcome: "permanent", StatusCode: 422,
		Error: "receiver said " + mark("delivery"), ExternalID: fmt.Sprintf("ext-%d", n), Status: store.DeliveryFailed})
	require.NoError(t, err)
	return s
}

// seedMany stores calls in one transaction (fast), each made by mk.
func (b *testBundle) seedMany(t *testing.T, n int, mk func(i int) (string, seedOpts)) []*seeded {
	t.Helper()
	var calls []*seeded
	require.NoError(t, pgx.BeginFunc(context.Background(), b.pool, func(tx pgx.Tx) error {
		for i := range n {
			agentID, o := mk(i)
			calls = append(calls, b.seedCall(t, tx, agentID, o))
		}
		return nil
	}))
	return calls
}

// markerPattern matches every kind of marker seedCall makes.
var markerPattern = regexp.MustCompile(`[A-Z]+-[a-z0-9-]+-\d{5}|\+1555\d{7}|rec/[a-z0-9-]+\.wav`)

// found returns the markers that can still be read back from some table
// of the schema, each with the table it is in. It reads every row of every
// table (River's included) as text, so no column is forgotten.
func (b *testBundle) found(t *testing.T, markers []string) map[string]string {
	t.Helper()
	ctx := context.Background()
	wanted := make(map[string]bool, len(markers))
	for _, m := range markers {
		require.True(t, markerPattern.MatchString(m), "marker %q", m)
		wanted[m] = true
	}
	rows, err := b.pool.Query(ctx, `
		SELECT table_name FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name`)
	require.NoError(t, err)
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Contains(t, tables, "calls")
	out := map[string]string{}
	for _, table := range tables {
		rows, err := b.pool.Query(ctx, `SELECT t::text FROM `+pgx.Identifier{table}.Sanitize()+` t`)
		require.NoError(t, err)
		texts, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		for _, text := range texts {
			for _, m := range markerPattern.FindAllString(text, -1) {
				if wanted[m] {
					out[m] = table
				}
			}
		}
	}
	return out
}

// markersOf lists the markers of calls.
func markersOf(calls []*seeded) []string {
	var out []string
	for _, c := range calls {
		out = append(out, c.markers...)
		if c.recordingKey != "" {
			out = append(out, c.recordingKey)
		}
	}
	return out
}

// fakeS3 is a private bucket (s3test) and a recording.Store on it that
// tries each deletion once.
type fakeS3 struct {
	*s3test.Server
	store *recording.Store
}

func newFakeS3(t *testing.T) *fakeS3 {
	t.Helper()
	srv := s3test.NewServer(t, s3test.Options{AccessKey: testAccessKey, SecretKey: testSecretKey})
	st, err := recording.New(context.Background(), recording.Config{
		Bucket: srv.Bucket, Endpoint: srv.URL, Region: "us-east-1", ForcePathStyle: true,
		AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey, HTTPClient: srv.Client(),
		DeleteAttempts: 1, RetryBackoff: func(int) time.Duration { return 0 },
	})
	require.NoError(t, err)
	return &fakeS3{Server: srv, store: st}
}

func (f *fakeS3) put(t *testing.T, key string) { f.Put(t, key, "audio of "+key) }

func (f *fakeS3) exists(t *testing.T, key string) bool { return f.Exists(t, key) }

// failTimes makes the bucket refuse to delete key (InternalError) times
// more times.
func (f *fakeS3) failTimes(key string, times int) { f.FailDeletes(key, gofakes3.ErrInternal, times) }
