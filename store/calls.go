package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/postcall/postcall/call"
)

// CallState is where a call's post-call processing is, as stored in
// calls.state and shown in the call document's state.
type CallState string

// Call states.
const (
	StateProcessing CallState = "processing"  // analysis or QC pending or running
	StateWaitingLLM CallState = "waiting_llm" // needs a model and none is configured
	StateDone       CallState = "done"        // finalized
	StateFailed     CallState = "failed"      // finalized, but a run failed
)

// Call is one stored call: the record as the platform sent it and what
// post-call processing made of it.
type Call struct {
	ID     uuid.UUID
	Record call.Record
	// PhoneKey is the normalised phone number used for lookups and erasure.
	PhoneKey string

	State             CallState
	Done              bool
	PlanVersion       *int
	AnalysisRunID     *int64
	QCRunID           *int64
	Disposition       *string
	DispositionSource *string
	AutoReason        *string
	GeneralSuccess    *bool
	CallSummary       *string
	FinalScore        *int
	QCPassed          *bool

	IsPurged  bool
	PurgedAt  *time.Time
	DeletedAt *time.Time
	CreatedAt time.Time
	UpdatedAt time.Time
}

// NewCall is a validated record with the values derived from it at ingest.
type NewCall struct {
	Record   *call.Record
	PhoneKey string
}

// InsertCall stores a new call. When a call with the same platform call_id
// exists, it stores nothing and returns the existing id with inserted false:
// re-ingesting a call never duplicates it or its work.
func InsertCall(ctx context.Context, db DBTX, nc NewCall) (id uuid.UUID, inserted bool, err error) {
	r := nc.Record
	if err := checkCallID(ctx, db, r.CallID); err != nil {
		return uuid.Nil, false, err
	}
	values, err := recordValues(r)
	if err != nil {
		return uuid.Nil, false, err
	}
	newID, err := uuid.NewV7()
	if err != nil {
		return uuid.Nil, false, fmt.Errorf("new call id: %w", err)
	}
	args := append(append([]any{newID}, values...), null(nc.PhoneKey))
	err = db.QueryRow(ctx, insertCallSQL, args...).Scan(&id)
	if err == nil {
		return id, true, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return uuid.Nil, false, fmt.Errorf("store call %s: %w", r.CallID, err)
	}
	err = db.QueryRow(ctx, `SELECT id FROM calls WHERE call_id = $1`, r.CallID).Scan(&id)
	if err != nil {
		return uuid.Nil, false, fmt.Errorf("find existing call %s: %w", r.CallID, err)
	}
	return id, false, nil
}

// recordColumn is one field of the call record and the column it is stored
// in.
type recordColumn struct {
	name string
	// field points to the Record's field.
	field any
}

// recordColumns lists the stored fields of r in column order. It is the one
// place a new field of the call record is added to the store (with its
// migration): InsertCall, callColumns and scanCall all read it. Empty
// strings and absent JSON are stored as NULL.
func recordColumns(r *call.Record) []recordColumn {
	return []recordColumn{
		{"call_id", &r.CallID}, {"agent_id", &r.AgentID}, {"direction", &r.Direction}, {"status", &r.Status},
		{"ended_reason", &r.EndedReason}, {"disconnected_by", &r.DisconnectedBy}, {"source", &r.Source},
		{"campaign_id", &r.CampaignID}, {"is_test", &r.IsTest}, {"customer_name", &r.CustomerName},
		{"customer_request", &r.CustomerRequest}, {"phone_number", &r.PhoneNumber}, {"carrier", &r.Carrier},
		{"did", &r.DID}, {"started_at", &r.StartedAt}, {"answered_at", &r.AnsweredAt}, {"ended_at", &r.EndedAt},
		{"ring_ms", &r.RingMs}, {"hold_ms", &r.HoldMs}, {"talk_ms", &r.TalkMs}, {"duration", &r.Duration},
		{"transcript", &r.Transcript}, {"recording_key", &r.RecordingKey}, {"contact_data", &r.ContactData},
		{"function_output", &r.FunctionOutput}, {"extra", &r.Extra},
	}
}

// recordColumnNames are the names of recordColumns, comma-separated.
func recordColumnNames() string {
	cols := recordColumns(&call.Record{})
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.name
	}
	return strings.Join(names, ", ")
}

// insertCallSQL stores a new call: its id, the record's columns and its
// phone key.
var insertCallSQL = func() string {
	n := len(recordColumns(&call.Record{})) + 2
	placeholders := make([]string, n)
	for i := range placeholders {
		placeholders[i] = fmt.Sprintf("$%d", i+1)
	}
	return `INSERT INTO calls (id, ` + recordColumnNames() + `, phone_key) VALUES (` + strings.Join(placeholders, ", ") +
		`) ON CONFLICT (call_id) DO NOTHING RETURNING id`
}()

// recordValues are the values of r's columns, in order.
func recordValues(r *call.Record) ([]any, error) {
	cols := recordColumns(r)
	values := make([]any, len(cols))
	for i, col := range cols {
		switch f := col.field.(type) {
		case *string:
			values[i] = null(*f)
		case *[]call.Turn:
			if *f != nil {
				b, err := json.Marshal(*f)
				if err != nil {
					return nil, fmt.Errorf("encode transcript of call %s: %w", r.CallID, err)
				}
				values[i] = b
			}
		case *json.RawMessage:
			values[i] = rawOrNil(*f)
		case *map[string]json.RawMessage:
			extra := *f
			if extra == nil {
				extra = map[string]json.RawMessage{}
			}
			b, err := json.Marshal(extra)
			if err != nil {
				return nil, fmt.Errorf("encode extra fields of call %s: %w", r.CallID, err)
			}
			values[i] = b
		case *bool:
			values[i] = *f
		case *time.Time:
			values[i] = *f
		case **time.Time:
			values[i] = *f
		case **int64:
			values[i] = *f
		case **float64:
			values[i] = *f
		default:
			return nil, fmt.Errorf("store column %s: unsupported field type %T", col.name, f)
		}
	}
	return values, nil
}

// recordScan returns the scan destinations of r's columns, in order, and
// finish, which moves what was scanned into r.
func recordScan(r *call.Record) (dest []any, finish func() error) {
	cols := recordColumns(r)
	dest = make([]any, len(cols))
	var fixes []func() error
	for i, col := range cols {
		switch f := col.field.(type) {
		case *string:
			var v *string
			dest[i] = &v
			fixes = append(fixes, func() error {
				if v != nil {
					*f = *v
				}
				return nil
			})
		case *[]call.Turn:
			var raw []byte
			dest[i] = &raw
			fixes = append(fixes, func() error {
				if raw == nil {
					return nil
				}
				if err := json.Unmarshal(raw, f); err != nil {
					return fmt.Errorf("decode transcript: %w", err)
				}
				return nil
			})
		case *json.RawMessage:
			var raw []byte
			dest[i] = &raw
			fixes = append(fixes, func() error { *f = raw; return nil })
		case *map[string]json.RawMessage:
			var raw []byte
			dest[i] = &raw
			fixes = append(fixes, func() error {
				if err := json.Unmarshal(raw, f); err != nil {
					return fmt.Errorf("decode extra fields: %w", err)
				}
				if len(*f) == 0 {
					*f = nil
				}
				return nil
			})
		default: // bool, time.Time and pointers, which pgx scans as they are
			dest[i] = f
		}
	}
	return dest, func() error {
		for _, fix := range fixes {
			if err := fix(); err != nil {
				return err
			}
		}
		return nil
	}
}

var callColumns = `id, ` + recordColumnNames() + `, phone_key,
	state, done, plan_version, analysis_run_id, qc_run_id, disposition, disposition_source, auto_reason,
	general_success, call_summary, final_score, qc_passed, is_purged, purged_at, deleted_at, created_at, updated_at`

// scanCall scans a row of callColumns, followed by the extra destinations
// when the row has more columns after them.
func scanCall(row pgx.Row, extra ...any) (*Call, error) {
	var (
		c        Call
		phoneKey *string
	)
	record, finish := recordScan(&c.Record)
	dest := append(append([]any{&c.ID}, record...), &phoneKey,
		&c.State, &c.Done, &c.PlanVersion, &c.AnalysisRunID, &c.QCRunID, &c.Disposition, &c.DispositionSource,
		&c.AutoReason, &c.GeneralSuccess, &c.CallSummary, &c.FinalScore, &c.QCPassed, &c.IsPurged, &c.PurgedAt,
		&c.DeletedAt, &c.CreatedAt, &c.UpdatedAt)
	if err := row.Scan(append(dest, extra...)...); err != nil {
		return nil, err
	}
	if phoneKey != nil {
		c.PhoneKey = *phoneKey
	}
	if err := finish(); err != nil {
		return nil, err
	}
	return &c, nil
}

// GetCall returns the call named by ref: postcall's id or the platform's
// call_id.
func GetCall(ctx context.Context, db DBTX, ref string) (*Call, error) {
	where, args, ok := callRefWhere(ref)
	if !ok {
		return nil, fmt.Errorf("call %q: %w", ref, ErrNotFound)
	}
	return getCall(ctx, db, ref, callColumns, where, args...)
}

// LockCall returns the call with its row locked until the end of tx:
// finalization, reanalysis and the purge of one call are serialised on it.
// The lock is FOR NO KEY UPDATE, the one an UPDATE of the row takes: it does
// not block the foreign-key checks of rows that merely reference the call
// (an LLM request recorded by the call's other run, a delivery attempt), as
// FOR UPDATE would. id is postcall's id, never a call_id: a job of a
// hard-deleted call must not lock (and write to) a call whose call_id
// happens to be that id.
func LockCall(ctx context.Context, tx DBTX, id uuid.UUID) (*Call, error) {
	return getCall(ctx, tx, id.String(), callColumns, lockByID, id)
}

// lockByID finds and locks the call with the id $1.
const lockByID = " WHERE id = $1 FOR NO KEY UPDATE"

// LockCallHead locks the call like LockCall but returns it with
// Record.Transcript nil: finalization only needs the call's processing
// state, and decoding the transcript is most of the cost of reading a call.
func LockCallHead(ctx context.Context, tx DBTX, id uuid.UUID) (*Call, error) {
	return getCall(ctx, tx, id.String(), headColumns, lockByID, id)
}

// headColumns are callColumns with a null transcript, for scanCall.
var headColumns = strings.Replace(callColumns, "transcript,", "NULL::jsonb AS transcript,", 1)

// getCall reads the columns of the call where (a WHERE clause and what
// follows it) finds; ref names the call in errors.
func getCall(ctx context.Context, db DBTX, ref, columns, where string, args ...any) (*Call, error) {
	c, err := scanCall(db.QueryRow(ctx, `SELECT `+columns+` FROM calls`+where, args...))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("call %q: %w", ref, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read call %s: %w", ref, err)
	}
	return c, nil
}

// Outcome is what finalization writes to a call.
type Outcome struct {
	State             CallState
	Disposition       *string
	DispositionSource *string
	AutoReason        *string
	GeneralSuccess    *bool
	CallSummary       *string
	FinalScore        *int
	QCPassed          *bool
}

// FinishCall writes the call's outcome and marks it done.
func FinishCall(ctx context.Context, db DBTX, id uuid.UUID, o Outcome) error {
	_, err := db.Exec(ctx, `
		UPDATE calls SET state = $2, done = true, disposition = $3, disposition_source = $4, auto_reason = $5,
			general_success = $6, call_summary = $7, final_score = $8, qc_passed = $9, updated_at = now()
		WHERE id = $1`,
		id, o.State, o.Disposition, o.DispositionSource, o.AutoReason, o.GeneralSuccess, o.CallSummary,
		o.FinalScore, o.QCPassed)
	if err != nil {
		return fmt.Errorf("finalize call %s: %w", id, err)
	}
	return nil
}

// StartRuns creates a pending run of each kind asked for, points the call
// at them (a kind not asked for keeps its current run) and marks the call
// not done until they finish, in one statement. It returns the new runs'
// ids, nil for a kind not asked for.
func StartRuns(ctx context.Context, db DBTX, id uuid.UUID, agentID string, planVersion int, trigger string, analysis, qc bool) (analysisRun, qcRun *int64, err error) {
	var kinds []string
	if analysis {
		kinds = append(kinds, KindAnalysis)
	}
	if qc {
		kinds = append(kinds, KindQC)
	}
	err = db.QueryRow(ctx, `
		WITH runs AS (
			INSERT INTO analysis_runs (call_id, kind, agent_id, plan_version, trigger)
			SELECT $1, kind, $2, $3, $4 FROM unnest($5::text[]) AS kind
			RETURNING id, kind
		), new AS (
			SELECT (SELECT id FROM runs WHERE kind = 'analysis') AS analysis, (SELECT id FROM runs WHERE kind = 'qc') AS qc
		)
		UPDATE calls SET state = 'processing', done = false, plan_version = $3,
			analysis_run_id = COALESCE(new.analysis, analysis_run_id), qc_run_id = COALESCE(new.qc, qc_run_id),
			updated_at = now()
		FROM new WHERE id = $1
		RETURNING new.analysis, new.qc`, id, agentID, planVersion, trigger, kinds).Scan(&analysisRun, &qcRun)
	if err != nil {
		return nil, nil, fmt.Errorf("start %v runs of call %s: %w", kinds, id, err)
	}
	return analysisRun, qcRun, nil
}

// SetCallState sets a not-yet-finalized call's state (processing or
// waiting_llm). A done call is left alone.
func SetCallState(ctx context.Context, db DBTX, id uuid.UUID, state CallState) error {
	_, err := db.Exec(ctx, `UPDATE calls SET state = $2, updated_at = now() WHERE id = $1 AND NOT done AND state <> $2`, id, state)
	if err != nil {
		return fmt.Errorf("set state of call %s: %w", id, err)
	}
	return nil
}

func null(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func rawOrNil(m json.RawMessage) []byte {
	if len(m) == 0 || string(m) == "null" {
		return nil
	}
	return m
}
