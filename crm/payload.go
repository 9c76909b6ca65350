package crm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// EventType is the Standard Webhooks event type of every webhook postcall
// sends.
const EventType = "call.analyzed"

// webhookData is the `data` object of a call.analyzed webhook: the call
// document's keys, snake_case, null where absent.
type webhookData struct {
	ID                string          `json:"id"`
	CallID            string          `json:"call_id"`
	AgentID           string          `json:"agent_id"`
	Direction         *string         `json:"direction"`
	Status            *string         `json:"status"`
	EndedReason       *string         `json:"ended_reason"`
	Disposition       *string         `json:"disposition"`
	DispositionSource *string         `json:"disposition_source"`
	GeneralSuccess    *bool           `json:"general_success"`
	FinalScore        *int            `json:"final_score"`
	CallSummary       *string         `json:"call_summary"`
	Duration          *float64        `json:"duration"`
	StartedAt         *time.Time      `json:"started_at"`
	EndedAt           *time.Time      `json:"ended_at"`
	Analysis          webhookAnalysis `json:"analysis"`
	RecordingURL      *string         `json:"recording_url"`
	Demo              bool            `json:"demo"`
	// PhoneNumber and ContactData are only sent with include_contact.
	PhoneNumber *string         `json:"phone_number,omitempty"`
	ContactData json.RawMessage `json:"contact_data,omitempty"`
}

type webhookAnalysis struct {
	Fields orderedFields `json:"fields"`
	// Evidence and Unverified are sent when the plan asks for evidence.
	Evidence   *orderedEvidence `json:"evidence,omitempty"`
	Unverified *[]string        `json:"unverified,omitempty"`
}

// orderedFields marshals as a JSON object keeping the selection's order.
type orderedFields []selectedField

func (f orderedFields) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, sf := range f {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(sf.name)
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(sf.value)
		if err != nil {
			return nil, fmt.Errorf("analysis field %q: %w", sf.name, err)
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func (r *CallResult) webhookAnalysis(c *common) webhookAnalysis {
	a := webhookAnalysis{Fields: r.selectFields(c)}
	a.Evidence, a.Unverified = r.evidencePayload(a.Fields)
	return a
}

type webhookEvent struct {
	Type      string      `json:"type"`
	Timestamp string      `json:"timestamp"`
	Data      webhookData `json:"data"`
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// webhookBody renders the Standard Webhooks body. It depends only on the
// result and the target (not on the attempt time when AnalyzedAt is set), so
// every retry of a delivery sends the same bytes.
func webhookBody(r *CallResult, c *common, includeContact bool, now time.Time) ([]byte, error) {
	at := r.AnalyzedAt
	if at.IsZero() {
		at = now
	}
	data := webhookData{
		ID:                r.ID,
		CallID:            r.CallID,
		AgentID:           r.AgentID,
		Direction:         optString(r.Direction),
		Status:            optString(r.Status),
		EndedReason:       optString(r.EndedReason),
		Disposition:       optString(r.Disposition),
		DispositionSource: optString(r.DispositionSource),
		GeneralSuccess:    r.GeneralSuccess,
		FinalScore:        r.FinalScore,
		CallSummary:       r.CallSummary,
		StartedAt:         optTime(r.StartedAt),
		EndedAt:           optTime(r.EndedAt),
		Analysis:          r.webhookAnalysis(c),
		RecordingURL:      optString(r.recordingLink(c)),
		Demo:              r.Demo,
	}
	if r.Duration > 0 {
		secs := r.Duration.Seconds()
		data.Duration = &secs
	}
	if includeContact {
		data.PhoneNumber = optString(r.PhoneNumber)
		if json.Valid(r.ContactData) {
			data.ContactData = r.ContactData
		}
	}
	body, err := json.Marshal(webhookEvent{
		Type:      EventType,
		Timestamp: at.UTC().Format(time.RFC3339),
		Data:      data,
	})
	if err != nil {
		return nil, fmt.Errorf("encode webhook body: %w", err)
	}
	return body, nil
}
