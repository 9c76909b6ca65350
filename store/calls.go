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
	extra := r.Extra
	if extra == nil {
		extra = map[string]json.RawMessage{}
	}
	extraJSON, err := json.Marshal(extra)
	if err != nil {
		return uuid.Nil, false, fmt.Errorf("encode extra fields of call %s: %w", r.CallID, err)
	}
	var transcript []byte
	if r.Transcript != nil {
		if transcript, err = json.Marshal(r.Transcript); err != nil {
			return uuid.Nil, false, fmt.Errorf("encode transcript of call %s: %w", r.CallID, err)
		}
	}
	newID, err := uuid.NewV7()
	if err != nil {
		return uuid.Nil, false, fmt.Errorf("new call id: %w", err)
	}
	err = db.QueryRow(ctx, `
		INSERT INTO calls (id, call_id, agent_id, direction, status, ended_reason, disconnected_by, source,
			campaign_id, is_test, customer_name, customer_request, phone_number, phone_key, carrier, did,
			started_at, answered_at, ended_at, ring_ms, hold_ms, talk_ms, duration, transcript,
			recording_key, contact_data, function_output, extra)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19,
			$20, $21, $22, $23, $24, $25, $26, $27, $28)
		ON CONFLICT (call_id) DO NOTHING
		RETURNING id`,
		newID, r.CallID, r.AgentID, null(r.Direction), null(r.Status), null(r.EndedReason), null(r.DisconnectedBy),
		null(r.Source), null(r.CampaignID), r.IsTest, null(r.CustomerName), null(r.CustomerRequest),
		null(r.PhoneNumber), null(nc.PhoneKey), null(r.Carrier), null(r.DID), r.StartedAt, r.AnsweredAt, r.EndedAt,
		r.RingMs, r.HoldMs, r.TalkMs, r.Duration, transcript, null(r.RecordingKey),
		rawOrNil(r.ContactData), rawOrNil(r.FunctionOutput), extraJSON,
	).Scan(&id)
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

const callColumns = `id, call_id, agent_id, direction, status, ended_reason, disconnected_by, source, campaign_id,
	is_test, customer_name, customer_request, phone_number, phone_key, carrier, did, started_at, answered_at,
	ended_at, ring_ms, hold_ms, talk_ms, duration, transcript, recording_key, contact_data, function_output, extra,
	state, done, plan_version, analysis_run_id, qc_run_id, disposition, disposition_source, auto_reason,
	general_success, call_summary, final_score, qc_passed, is_purged, purged_at, deleted_at, created_at, updated_at`

// scanCall scans a row of callColumns, followed by the extra destinations
// when the row has more columns after them.
func scanCall(row pgx.Row, extra ...any) (*Call, error) {
	var (
		c                                                   Call
		r                                                   = &c.Record
		direction, status, endedReason, disconnectedBy      *string
		source, campaignID, customerName, customerRequest   *string
		phoneNumber, phoneKey, carrier, did, recordingKey   *string
		transcript, contactData, functionOutput, extraBytes []byte
	)
	dest := append([]any{&c.ID, &r.CallID, &r.AgentID, &direction, &status, &endedReason, &disconnectedBy, &source,
		&campaignID, &r.IsTest, &customerName, &customerRequest, &phoneNumber, &phoneKey, &carrier, &did,
		&r.StartedAt, &r.AnsweredAt, &r.EndedAt, &r.RingMs, &r.HoldMs, &r.TalkMs, &r.Duration, &transcript,
		&recordingKey, &contactData, &functionOutput, &extraBytes,
		&c.State, &c.Done, &c.PlanVersion, &c.AnalysisRunID, &c.QCRunID, &c.Disposition, &c.DispositionSource,
		&c.AutoReason, &c.GeneralSuccess, &c.CallSummary, &c.FinalScore, &c.QCPassed, &c.IsPurged, &c.PurgedAt,
		&c.DeletedAt, &c.CreatedAt, &c.UpdatedAt}, extra...)
	if err := row.Scan(dest...); err != nil {
		return nil, err
	}
	for dst, src := range map[*string]*string{
		&r.Direction: direction, &r.Status: status, &r.EndedReason: endedReason, &r.DisconnectedBy: disconnectedBy,
		&r.Source: source, &r.CampaignID: campaignID, &r.CustomerName: customerName,
		&r.CustomerRequest: customerRequest, &r.PhoneNumber: phoneNumber, &c.PhoneKey: phoneKey,
		&r.Carrier: carrier, &r.DID: did, &r.RecordingKey: recordingKey,
	} {
		if src != nil {
			*dst = *src
		}
	}
	if transcript != nil {
		if err := json.Unmarshal(transcript, &r.Transcript); err != nil {
			return nil, fmt.Errorf("decode transcript: %w", err)
		}
	}
	r.ContactData = contactData
	r.FunctionOutput = functionOutput
	if err := json.Unmarshal(extraBytes, &r.Extra); err != nil {
		return nil, fmt.Errorf("decode extra fields: %w", err)
	}
	if len(r.Extra) == 0 {
		r.Extra = nil
	}
	return &c, nil
}

// GetCall returns the call named by ref: postcall's id or the platform's
// call_id.
func GetCall(ctx context.Context, db DBTX, ref string) (*Call, error) {
	return getCall(ctx, db, ref, callColumns, "")
}

// LockCall returns the call with its row locked until the end of tx:
// finalization, reanalysis and the purge of one call are serialised on it.
// The lock is FOR NO KEY UPDATE, the one an UPDATE of the row takes: it does
// not block the foreign-key checks of rows that merely reference the call
// (an LLM request recorded by the call's other run, a delivery attempt), as
// FOR UPDATE would.
func LockCall(ctx context.Context, tx DBTX, id uuid.UUID) (*Call, error) {
	return getCall(ctx, tx, id.String(), callColumns, callLock)
}

const callLock = " FOR NO KEY UPDATE"

// LockCallHead locks the call like LockCall but returns it with
// Record.Transcript nil: finalization only needs the call's processing
// state, and decoding the transcript is most of the cost of reading a call.
func LockCallHead(ctx context.Context, tx DBTX, id uuid.UUID) (*Call, error) {
	return getCall(ctx, tx, id.String(), headColumns, callLock)
}

// headColumns are callColumns with a null transcript, for scanCall.
var headColumns = strings.Replace(callColumns, "transcript,", "NULL::jsonb AS transcript,", 1)

func getCall(ctx context.Context, db DBTX, ref, columns, suffix string) (*Call, error) {
	var row pgx.Row
	if id, err := uuid.Parse(ref); err == nil {
		row = db.QueryRow(ctx, `SELECT `+columns+` FROM calls WHERE id = $1 OR call_id = $2`+suffix, id, ref)
	} else {
		row = db.QueryRow(ctx, `SELECT `+columns+` FROM calls WHERE call_id = $1`+suffix, ref)
	}
	c, err := scanCall(row)
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
