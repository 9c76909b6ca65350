package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/postcall/postcall/call"
	"github.com/postcall/postcall/redact"
)

// Document is the call document of the contract (`show --json`,
// GET /v1/calls/{id}): snake_case keys, null where a value is absent or
// purged. Keys the platform sent that postcall does not model are added at
// the top level by MarshalJSON, so that nothing it sent is dropped.
type Document struct {
	ID                uuid.UUID `json:"id"`
	CallID            string    `json:"call_id"`
	AgentID           string    `json:"agent_id"`
	Direction         *string   `json:"direction"`
	Status            *string   `json:"status"`
	EndedReason       *string   `json:"ended_reason"`
	EndedReasonLabel  string    `json:"ended_reason_label"`
	DisconnectedBy    *string   `json:"disconnected_by"`
	Duration          *float64  `json:"duration"`
	State             string    `json:"state"`
	Done              bool      `json:"done"`
	GeneralSuccess    *bool     `json:"general_success"`
	Disposition       *string   `json:"disposition"`
	DispositionSource *string   `json:"disposition_source"`
	DispositionReason *string   `json:"disposition_reason"`
	CallSummary       *string   `json:"call_summary"`
	FinalScore        *int      `json:"final_score"`
	// Demo is true when any current result came from the built-in demo
	// model, not a real LLM: the disposition, summary and score are then
	// demo output too.
	Demo         bool             `json:"demo"`
	Analysis     *AnalysisDoc     `json:"analysis"`
	QC           *QCDoc           `json:"qc"`
	Tokens       TokensDoc        `json:"tokens"`
	Integrations []IntegrationDoc `json:"integrations"`
	Recording    *RecordingDoc    `json:"recording"`
	Transcript   []call.Turn      `json:"transcript"`
	// Redaction counts, per entity the agent's plan listed at ingest, what
	// was replaced by placeholders in the transcript; null when the plan
	// redacted nothing. Never a value.
	Redaction       redact.Counts   `json:"redaction"`
	PhoneNumber     *string         `json:"phone_number"`
	CustomerName    *string         `json:"customer_name"`
	CustomerRequest *string         `json:"customer_request"`
	Source          *string         `json:"source"`
	CampaignID      *string         `json:"campaign_id"`
	IsTest          bool            `json:"is_test"`
	Carrier         *string         `json:"carrier"`
	DID             *string         `json:"did"`
	StartedAt       *time.Time      `json:"started_at"`
	AnsweredAt      *time.Time      `json:"answered_at"`
	EndedAt         time.Time       `json:"ended_at"`
	RingMs          *int64          `json:"ring_ms"`
	HoldMs          *int64          `json:"hold_ms"`
	TalkMs          *int64          `json:"talk_ms"`
	ContactData     json.RawMessage `json:"contact_data"`
	FunctionOutput  json.RawMessage `json:"function_output"`
	PlanVersion     *int            `json:"plan_version"`
	Runs            []RunDoc        `json:"runs"`
	IsPurged        bool            `json:"is_purged"`
	PurgedAt        *time.Time      `json:"purged_at"`
	DeletedAt       *time.Time      `json:"deleted_at"`
	CreatedAt       time.Time       `json:"created_at"`
	UpdatedAt       time.Time       `json:"updated_at"`

	extra map[string]json.RawMessage
}

// AnalysisDoc is the current analysis run.
type AnalysisDoc struct {
	Fields      json.RawMessage `json:"fields"`
	Model       *string         `json:"model"`
	PlanVersion int             `json:"plan_version"`
	Status      string          `json:"status"`
	Error       *string         `json:"error"`
	// Demo marks output of the built-in demo model, not of a real LLM.
	Demo bool `json:"demo"`
}

// QCDoc is the current QC run.
type QCDoc struct {
	Items       json.RawMessage `json:"items"`
	Score       *int            `json:"score"`
	Passed      *bool           `json:"passed"`
	Model       *string         `json:"model"`
	PlanVersion int             `json:"plan_version"`
	Status      string          `json:"status"`
	Error       *string         `json:"error"`
	Demo        bool            `json:"demo"`
}

// TokensDoc sums the call's post-call LLM requests.
type TokensDoc struct {
	Prompt       int `json:"prompt"`
	Completion   int `json:"completion"`
	CachedRead   int `json:"cached_read"`
	CacheCreated int `json:"cache_created"`
	FreshPrompt  int `json:"fresh_prompt"`
}

// RecordingDoc is the call's recording with a freshly signed URL.
type RecordingDoc struct {
	Key       string     `json:"key"`
	URL       *string    `json:"url"`
	ExpiresAt *time.Time `json:"expires_at"`
}

// RunDoc is one run in the call's history.
type RunDoc struct {
	ID          int64      `json:"id"`
	Kind        string     `json:"kind"`
	PlanVersion int        `json:"plan_version"`
	Trigger     string     `json:"trigger"`
	Status      string     `json:"status"`
	Model       *string    `json:"model"`
	Demo        bool       `json:"demo"`
	Score       *int       `json:"score,omitempty"`
	Error       *string    `json:"error"`
	Tokens      TokensDoc  `json:"tokens"`
	Requests    int        `json:"requests"`
	LatencyMs   *int64     `json:"latency_ms"`
	CreatedAt   time.Time  `json:"created_at"`
	FinishedAt  *time.Time `json:"finished_at"`
}

// IntegrationDoc is one delivery of the call to an integration, with its
// attempt log.
type IntegrationDoc struct {
	Name           string            `json:"name"`
	Type           string            `json:"type"`
	Status         string            `json:"status"`
	Attempts       int               `json:"attempts"`
	LastStatusCode *int              `json:"last_status_code"`
	LastError      *string           `json:"last_error"`
	DeliveredAt    *time.Time        `json:"delivered_at"`
	NextAttemptAt  *time.Time        `json:"next_attempt_at"`
	WebhookID      string            `json:"webhook_id"`
	ExternalID     *string           `json:"external_id"`
	Log            []DeliveryAttempt `json:"log"`
}

// Signer signs a recording key into a short-lived URL.
type Signer func(ctx context.Context, key string) (url string, expiresAt time.Time, err error)

// DocumentOptions supply what the store does not hold.
type DocumentOptions struct {
	// Sign signs the recording URL; nil leaves url and expires_at null.
	Sign Signer
}

// BuildDocument assembles the call document of c.
func BuildDocument(ctx context.Context, db DBTX, c *Call, opts DocumentOptions) (*Document, error) {
	r := &c.Record
	reason := call.LookupReason(r.EndedReason)
	d := &Document{
		ID: c.ID, CallID: r.CallID, AgentID: r.AgentID,
		Direction: null(r.Direction), Status: null(call.DeriveStatus(r)), EndedReason: null(r.EndedReason),
		EndedReasonLabel: reason.Label, DisconnectedBy: null(call.DisconnectedBy(r)), Duration: r.Duration,
		State: c.State, Done: c.Done, GeneralSuccess: c.GeneralSuccess, Disposition: c.Disposition,
		DispositionSource: c.DispositionSource, DispositionReason: c.AutoReason, CallSummary: c.CallSummary,
		FinalScore: c.FinalScore, Integrations: []IntegrationDoc{}, Transcript: r.Transcript,
		PhoneNumber: null(r.PhoneNumber), CustomerName: null(r.CustomerName), CustomerRequest: null(r.CustomerRequest),
		Source: null(r.Source), CampaignID: null(r.CampaignID), IsTest: r.IsTest, Carrier: null(r.Carrier),
		DID: null(r.DID), StartedAt: r.StartedAt, AnsweredAt: r.AnsweredAt, EndedAt: r.EndedAt,
		RingMs: r.RingMs, HoldMs: r.HoldMs, TalkMs: r.TalkMs,
		ContactData: rawOrNull(r.ContactData), FunctionOutput: rawOrNull(r.FunctionOutput),
		PlanVersion: c.PlanVersion, Runs: []RunDoc{},
		IsPurged: c.IsPurged, PurgedAt: c.PurgedAt, DeletedAt: c.DeletedAt, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt,
		extra: r.Extra,
	}

	runs, err := CallRuns(ctx, db, c.ID)
	if err != nil {
		return nil, err
	}
	for _, run := range runs {
		d.Runs = append(d.Runs, RunDoc{
			ID: run.ID, Kind: run.Kind, PlanVersion: run.PlanVersion, Trigger: run.Trigger, Status: run.Status,
			Model: run.Model, Demo: run.Demo, Score: run.Score, Error: run.Error, Tokens: tokens(run.Usage),
			Requests: run.Requests, LatencyMs: run.LatencyMs, CreatedAt: run.CreatedAt, FinishedAt: run.FinishedAt,
		})
		switch {
		case c.AnalysisRunID != nil && run.ID == *c.AnalysisRunID:
			d.Demo = d.Demo || run.Demo
			d.Analysis = &AnalysisDoc{
				Fields: rawOrNull(run.Output), Model: run.Model, PlanVersion: run.PlanVersion, Status: run.Status,
				Error: run.Error, Demo: run.Demo,
			}
		case c.QCRunID != nil && run.ID == *c.QCRunID:
			d.Demo = d.Demo || run.Demo
			d.QC = &QCDoc{
				Items: rawOrNull(run.Output), Score: run.Score, Passed: run.Passed, Model: run.Model,
				PlanVersion: run.PlanVersion, Status: run.Status, Error: run.Error, Demo: run.Demo,
			}
		}
	}
	if d.Redaction, err = CallRedaction(ctx, db, c.ID); err != nil {
		return nil, err
	}
	usage, err := CallUsage(ctx, db, c.ID)
	if err != nil {
		return nil, err
	}
	d.Tokens = tokens(usage)

	if r.RecordingKey != "" && !c.IsPurged {
		d.Recording = &RecordingDoc{Key: r.RecordingKey}
		if opts.Sign != nil {
			url, expires, err := opts.Sign(ctx, r.RecordingKey)
			if err != nil {
				return nil, fmt.Errorf("call %s: %w", c.ID, err)
			}
			d.Recording.URL, d.Recording.ExpiresAt = &url, &expires
		}
	}
	deliveries, err := CallDeliveries(ctx, db, c.ID)
	if err != nil {
		return nil, err
	}
	for _, del := range deliveries {
		log, err := DeliveryAttempts(ctx, db, del.ID)
		if err != nil {
			return nil, err
		}
		d.Integrations = append(d.Integrations, IntegrationDoc{
			Name: del.Integration, Type: del.Type, Status: del.Status, Attempts: del.Attempts,
			LastStatusCode: del.LastStatusCode, LastError: del.LastError, DeliveredAt: del.DeliveredAt,
			NextAttemptAt: del.NextAttemptAt, WebhookID: del.ID, ExternalID: del.ExternalID, Log: log,
		})
	}
	return d, nil
}

func tokens(u Usage) TokensDoc {
	return TokensDoc{Prompt: u.Prompt, Completion: u.Completion, CachedRead: u.CachedRead,
		CacheCreated: u.CacheCreated, FreshPrompt: u.FreshPrompt()}
}

func rawOrNull(m json.RawMessage) json.RawMessage {
	if len(m) == 0 {
		return json.RawMessage("null")
	}
	return m
}

// MarshalJSON writes the document and, after its own keys, every key of
// the original record postcall does not model (tool_calls, events, keys it
// does not know), unless a document key of the same name exists.
func (d *Document) MarshalJSON() ([]byte, error) {
	type plain Document
	base, err := json.Marshal((*plain)(d))
	if err != nil {
		return nil, err
	}
	if len(d.extra) == 0 {
		return base, nil
	}
	var own map[string]json.RawMessage
	if err := json.Unmarshal(base, &own); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	buf.Write(bytes.TrimSuffix(bytes.TrimSpace(base), []byte("}")))
	for _, k := range sortedKeys(d.extra) {
		if _, taken := own[k]; taken {
			continue
		}
		key, _ := json.Marshal(k)
		buf.WriteByte(',')
		buf.Write(key)
		buf.WriteByte(':')
		buf.Write(d.extra[k])
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}
