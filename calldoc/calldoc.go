// Package calldoc is the call document, the JSON contract of one call
// (`postcall show --json`, GET /v1/calls/{id}): its keys, how each is
// derived from the stored call, its runs and deliveries, and how keys the
// platform sent that postcall does not model are kept. A new key of the
// contract goes here (and, when it is stored, in store and call).
package calldoc

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/postcall/postcall/analysis"
	"github.com/postcall/postcall/call"
	"github.com/postcall/postcall/recording"
	"github.com/postcall/postcall/redact"
	"github.com/postcall/postcall/store"
)

// Document is the call document of the contract (`show --json`,
// GET /v1/calls/{id}): snake_case keys, null where a value is absent or
// purged. Keys the platform sent that postcall does not model are added at
// the top level by MarshalJSON, so that nothing it sent is dropped.
type Document struct {
	// ListItem holds the keys a listing shows too (id, call_id, status,
	// disposition, is_purged, ...), derived as the list derives them.
	store.ListItem
	FinalScore *int `json:"final_score"`
	// Demo is true when any current result came from the built-in demo
	// model, not a real LLM: the disposition, summary and score are then
	// demo output too.
	Demo     bool      `json:"demo"`
	Analysis *Analysis `json:"analysis"`
	QC       *QC       `json:"qc"`
	Tokens   Tokens    `json:"tokens"`
	// Cost is what the call's LLM requests cost, in US dollars.
	Cost         Cost          `json:"cost"`
	Integrations []Integration `json:"integrations"`
	Recording    *Recording    `json:"recording"`
	Transcript   []call.Turn   `json:"transcript"`
	// Redaction counts, per entity the agent's plan listed at ingest, what
	// was replaced by placeholders in the transcript; null when the plan
	// redacted nothing. Never a value.
	Redaction      redact.Counts   `json:"redaction"`
	Source         *string         `json:"source"`
	CampaignID     *string         `json:"campaign_id"`
	Carrier        *string         `json:"carrier"`
	DID            *string         `json:"did"`
	AnsweredAt     *time.Time      `json:"answered_at"`
	RingMs         *int64          `json:"ring_ms"`
	HoldMs         *int64          `json:"hold_ms"`
	TalkMs         *int64          `json:"talk_ms"`
	ContactData    json.RawMessage `json:"contact_data"`
	FunctionOutput json.RawMessage `json:"function_output"`
	PlanVersion    *int            `json:"plan_version"`
	Runs           []Run           `json:"runs"`

	extra map[string]json.RawMessage
	// outputs are the runs' outputs by run id, for Changes.
	outputs map[int64]json.RawMessage
	// viewer: written without what a viewer may not see (ForViewer).
	viewer bool
}

// viewerHidden are the keys a viewer's document lacks, at the top level and
// in each run: token counts and their cost (access: seed 001's calls-only
// user sees neither).
var viewerHidden = []string{"tokens", "cost"}

// viewerHiddenInRuns are the keys each run of a viewer's document lacks.
var viewerHiddenInRuns = []string{"tokens", "cost_usd", "llm_requests"}

// ForViewer strips d of what a viewer may not see: the call's and every
// run's tokens and cost, and the runs' LLM requests. The API and the
// console both show a viewer only a document passed through here.
func (d *Document) ForViewer() {
	d.viewer = true
	d.Tokens = Tokens{}
	d.Cost = Cost{}
	for i := range d.Runs {
		d.Runs[i].Tokens = Tokens{}
		d.Runs[i].CostUSD = nil
		d.Runs[i].LLMRequests = nil
	}
}

// Extra returns a key of the record postcall does not model (tool_calls,
// turn_metrics, events, ...) as sent; nil when absent.
func (d *Document) Extra(key string) json.RawMessage { return d.extra[key] }

// Analysis is the current analysis run.
type Analysis struct {
	Fields      json.RawMessage `json:"fields"`
	Model       *string         `json:"model"`
	PlanVersion int             `json:"plan_version"`
	Status      store.RunStatus `json:"status"`
	Error       *string         `json:"error"`
	// Demo marks output of the built-in demo model, not of a real LLM.
	Demo bool `json:"demo"`
	// Evidence is, with the plan's analysis.evidence, each value's quote:
	// {FIELD: {quote, turn, verified}}, and under require the withheld
	// value of an unverified field; null when the plan asks for none.
	Evidence json.RawMessage `json:"evidence"`
	// Unverified lists the fields whose quote was not found, in plan
	// order; null when the plan asks for no evidence.
	Unverified []string `json:"unverified"`
}

// QC is the current QC run.
type QC struct {
	Items       json.RawMessage `json:"items"`
	Score       *int            `json:"score"`
	Passed      *bool           `json:"passed"`
	Model       *string         `json:"model"`
	PlanVersion int             `json:"plan_version"`
	Status      store.RunStatus `json:"status"`
	Error       *string         `json:"error"`
	Demo        bool            `json:"demo"`
	// Unverified lists the items whose quote was not found (each item has
	// verified and turn); null when the plan's qc.evidence is off.
	Unverified []string `json:"unverified"`
}

// Tokens is the token usage of a run or of all the call's post-call LLM
// requests, with the prompt tokens not read from the cache.
type Tokens struct {
	analysis.Usage
	FreshPrompt int `json:"fresh_prompt"`
}

// Cost is what all of a call's LLM requests cost (every run, reanalyses
// included), in US dollars, as stored with each request. A sum that
// includes an unpriced request (a model or tier without a price) is null,
// never a partial figure: usd is null and priced false when any request is
// unpriced, analysis_usd or qc_usd when one of that kind is; the other
// kind's sum stands. A call with no request costs 0.
type Cost struct {
	USD         *float64 `json:"usd"`
	AnalysisUSD *float64 `json:"analysis_usd"`
	QCUSD       *float64 `json:"qc_usd"`
	// Priced is false when any request is unpriced.
	Priced bool `json:"priced"`
}

// costSum adds up costs; a nil (unpriced) cost makes the sum nil.
type costSum struct {
	usd      float64
	unpriced bool
}

func (c *costSum) add(usd *float64) {
	if usd == nil {
		c.unpriced = true
		return
	}
	c.usd += *usd
}

func (c *costSum) addSum(o costSum) {
	c.usd += o.usd
	c.unpriced = c.unpriced || o.unpriced
}

// value is the sum, or nil when any part was unpriced. It is rounded to
// a picodollar, far below what one token costs, so that float addition
// does not show as 0.0007540000000000001.
func (c costSum) value() *float64 {
	if c.unpriced {
		return nil
	}
	usd := math.Round(c.usd*1e12) / 1e12
	return &usd
}

// Recording is the call's recording with a freshly signed URL.
type Recording struct {
	Key       string     `json:"key"`
	URL       *string    `json:"url"`
	ExpiresAt *time.Time `json:"expires_at"`
}

// Run is one run in the call's history.
type Run struct {
	ID          int64           `json:"id"`
	Kind        string          `json:"kind"`
	PlanVersion int             `json:"plan_version"`
	Trigger     string          `json:"trigger"`
	Status      store.RunStatus `json:"status"`
	Model       *string         `json:"model"`
	Demo        bool            `json:"demo"`
	Score       *int            `json:"score,omitempty"`
	Error       *string         `json:"error"`
	Tokens      Tokens          `json:"tokens"`
	Requests    int             `json:"requests"`
	// CostUSD is what the run's requests cost; null when any is unpriced.
	CostUSD    *float64   `json:"cost_usd"`
	LatencyMs  *int64     `json:"latency_ms"`
	CreatedAt  time.Time  `json:"created_at"`
	FinishedAt *time.Time `json:"finished_at"`
	// LLMRequests are the run's requests in order: output budget, finish
	// reason, service tier (a cut-off answer sent again with the full
	// budget, a flex request served at the default tier show here).
	LLMRequests []store.RequestDoc `json:"llm_requests"`
}

// Integration is one delivery of the call to an integration, with its
// attempt log.
type Integration struct {
	Name           string                  `json:"name"`
	Type           string                  `json:"type"`
	Status         store.DeliveryStatus    `json:"status"`
	Attempts       int                     `json:"attempts"`
	LastStatusCode *int                    `json:"last_status_code"`
	LastError      *string                 `json:"last_error"`
	DeliveredAt    *time.Time              `json:"delivered_at"`
	NextAttemptAt  *time.Time              `json:"next_attempt_at"`
	WebhookID      string                  `json:"webhook_id"`
	ExternalID     *string                 `json:"external_id"`
	Log            []store.DeliveryAttempt `json:"log"`
}

// Signer signs a recording key into a short-lived URL; *recording.Store is
// one.
type Signer interface {
	Sign(ctx context.Context, key string) (recording.SignedURL, error)
}

// Options supply what the store does not hold.
type Options struct {
	// Signer signs the recording URL; nil leaves url and expires_at null.
	Signer Signer
}

// SignWith signs recording URLs with rec; nil rec signs none.
func SignWith(rec *recording.Store) Options {
	if rec == nil {
		return Options{}
	}
	return Options{Signer: rec}
}

// Build assembles the call document of c.
func Build(ctx context.Context, db store.DBTX, c *store.Call, opts Options) (*Document, error) {
	r := &c.Record
	d := &Document{
		ListItem: c.ListItem(), FinalScore: c.FinalScore, Integrations: []Integration{}, Transcript: r.Transcript,
		Source: null(r.Source), CampaignID: null(r.CampaignID), Carrier: null(r.Carrier), DID: null(r.DID),
		AnsweredAt: r.AnsweredAt, RingMs: r.RingMs, HoldMs: r.HoldMs, TalkMs: r.TalkMs,
		ContactData: rawOrNull(r.ContactData), FunctionOutput: rawOrNull(r.FunctionOutput),
		PlanVersion: c.PlanVersion, Runs: []Run{}, extra: r.Extra, outputs: map[int64]json.RawMessage{},
	}

	runs, err := store.CallRuns(ctx, db, c.ID)
	if err != nil {
		return nil, err
	}
	requests, err := store.CallRequests(ctx, db, c.ID)
	if err != nil {
		return nil, err
	}
	var usage analysis.Usage // the call's, summed from its runs': every request belongs to a run
	costs := map[string]*costSum{store.KindAnalysis: {}, store.KindQC: {}}
	for _, run := range runs {
		usage = usage.Add(run.Usage)
		d.outputs[run.ID] = run.Output
		llmRequests := requests[run.ID]
		if llmRequests == nil {
			llmRequests = []store.RequestDoc{} // the document says [], not null
		}
		var runCost costSum
		for _, q := range llmRequests {
			runCost.add(q.CostUSD)
		}
		if kind := costs[run.Kind]; kind != nil {
			kind.addSum(runCost)
		}
		d.Runs = append(d.Runs, Run{
			ID: run.ID, Kind: run.Kind, PlanVersion: run.PlanVersion, Trigger: run.Trigger, Status: run.Status,
			Model: run.Model, Demo: run.Demo, Score: run.Score, Error: run.Error, Tokens: tokens(run.Usage),
			Requests: run.Requests, CostUSD: runCost.value(), LatencyMs: run.LatencyMs, CreatedAt: run.CreatedAt,
			FinishedAt: run.FinishedAt, LLMRequests: llmRequests,
		})
		switch {
		case c.AnalysisRunID != nil && run.ID == *c.AnalysisRunID:
			d.Demo = d.Demo || run.Demo
			d.Analysis = &Analysis{
				Fields: rawOrNull(run.Output), Model: run.Model, PlanVersion: run.PlanVersion, Status: run.Status,
				Error: run.Error, Demo: run.Demo, Evidence: rawOrNull(run.Evidence), Unverified: run.Unverified,
			}
		case c.QCRunID != nil && run.ID == *c.QCRunID:
			d.Demo = d.Demo || run.Demo
			d.QC = &QC{
				Items: rawOrNull(run.Output), Score: run.Score, Passed: run.Passed, Model: run.Model,
				PlanVersion: run.PlanVersion, Status: run.Status, Error: run.Error, Demo: run.Demo,
				Unverified: run.Unverified,
			}
		}
	}
	if d.Redaction, err = store.CallRedaction(ctx, db, c.ID); err != nil {
		return nil, err
	}
	d.Tokens = tokens(usage)
	total := *costs[store.KindAnalysis]
	total.addSum(*costs[store.KindQC])
	d.Cost = Cost{
		USD: total.value(), AnalysisUSD: costs[store.KindAnalysis].value(), QCUSD: costs[store.KindQC].value(),
		Priced: !total.unpriced,
	}

	if c.IsPurged {
		// Seed 004: a purged call's transcript, recording, phone number and
		// name are null, whatever the purge left behind (a half-purged row).
		d.Transcript, d.PhoneNumber, d.CustomerName = nil, nil, nil
	}
	if r.RecordingKey != "" && !c.IsPurged {
		d.Recording = &Recording{Key: r.RecordingKey}
		if opts.Signer != nil {
			signed, err := opts.Signer.Sign(ctx, r.RecordingKey)
			if err != nil {
				return nil, fmt.Errorf("call %s: %w", c.ID, err)
			}
			d.Recording.URL, d.Recording.ExpiresAt = &signed.URL, &signed.ExpiresAt
		}
	}
	deliveries, err := store.CallDeliveries(ctx, db, c.ID)
	if err != nil {
		return nil, err
	}
	for _, del := range deliveries {
		log, err := store.DeliveryAttempts(ctx, db, del.ID)
		if err != nil {
			return nil, err
		}
		d.Integrations = append(d.Integrations, Integration{
			Name: del.Integration, Type: del.Type, Status: del.Status, Attempts: del.Attempts,
			LastStatusCode: del.LastStatusCode, LastError: del.LastError, DeliveredAt: del.DeliveredAt,
			NextAttemptAt: del.NextAttemptAt, WebhookID: del.ID, ExternalID: del.ExternalID, Log: log,
		})
	}
	return d, nil
}

func tokens(u analysis.Usage) Tokens {
	return Tokens{Usage: u, FreshPrompt: u.FreshPrompt()}
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
	if d.viewer {
		if base, err = stripViewerKeys(base); err != nil {
			return nil, err
		}
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
	for _, k := range slices.Sorted(maps.Keys(d.extra)) {
		if _, taken := own[k]; taken || (d.viewer && slices.Contains(viewerHidden, k)) {
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

// stripViewerKeys drops viewerHidden from a document's JSON and
// viewerHiddenInRuns from each of its runs, the other keys sorted.
func stripViewerKeys(doc []byte) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(doc, &m); err != nil {
		return nil, err
	}
	for _, k := range viewerHidden {
		delete(m, k)
	}
	var runs []map[string]json.RawMessage
	if err := json.Unmarshal(m["runs"], &runs); err == nil && runs != nil {
		for _, run := range runs {
			for _, k := range viewerHiddenInRuns {
				delete(run, k)
			}
		}
		if m["runs"], err = json.Marshal(runs); err != nil {
			return nil, err
		}
	}
	return json.Marshal(m)
}

// null is nil for an absent (empty) value.
func null(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
