package analysis

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/postcall/postcall/agent"
)

// Kinds of post-call requests; they also name the cache key and the
// InvalidOutputError.
const (
	KindAnalysis = "analysis"
	KindQC       = "qc"
)

// Input is the per-call content of a request. It goes into the user
// message, after the static prefix. Empty values are left out.
type Input struct {
	// CallID identifies the call in errors; it is not sent to the model.
	CallID string
	// Direction is "inbound" or "outbound".
	Direction string
	// EndedReason is the platform's ended reason, as given.
	EndedReason string
	// DisconnectedBy says who hung up (bot, customer, voicemail, ...).
	DisconnectedBy string
	// StartedAt and EndedAt are sent in UTC, RFC 3339.
	StartedAt *time.Time
	EndedAt   *time.Time
	// Duration is in seconds.
	Duration *float64
	// CustomerName is the contact's name, when known.
	CustomerName string
	// ContactData is the contact's custom fields, a JSON object.
	ContactData json.RawMessage
	// FunctionOutput is what the agent's functions saved, a JSON object.
	FunctionOutput json.RawMessage
	// Transcript is the conversation in order.
	Transcript []Turn
	// History is what this plan version's stored answers of the run's kind
	// took; it sizes the output budget and is not sent. Zero: none yet.
	History History
	// Answered is the answer to the run's first request when that request
	// was sent elsewhere (the Batch API): the run starts from it, as if
	// Complete had returned it, and sends only what follows (a full-budget
	// retry, a repair) to the Model. Nil: the run sends its first request.
	Answered *Answered
}

// Answered is the answer to a run's first request, obtained outside the
// Model.
type Answered struct {
	// Response is the answer.
	Response *Response
	// MaxTokens is the output budget the request was sent with; 0: the one
	// the run computes.
	MaxTokens int
}

// Turn is one transcript turn.
type Turn struct {
	// Role is "agent", "user" or "tool".
	Role string
	Text string
	// TMs is the turn's start in milliseconds from the call's start.
	TMs *int64
}

// CacheKey is the prompt_cache_key of one agent plan version and kind:
// "postcall-" and 32 hex digits of SHA-256 over agent id, version and kind.
// It routes every request of one plan to the same provider cache while
// revealing nothing about the agent.
func CacheKey(agentID string, version int, kind string) string {
	sum := sha256.Sum256([]byte(agentID + "/" + strconv.Itoa(version) + "/" + kind))
	return "postcall-" + hex.EncodeToString(sum[:])[:32]
}

// analysisSystem is the static system message of an analysis request. It
// depends on the plan only: same plan, same bytes.
func analysisSystem(a *agent.Analysis) string {
	var b strings.Builder
	b.WriteString(strings.TrimSpace(a.Prompt))
	b.WriteString("\n\n## Task\n")
	b.WriteString("You analyse one finished phone call between a voice AI agent and a customer. " +
		"The call's facts and transcript are in the next message. " +
		"Answer with one JSON object holding exactly the fields below, following the response schema.\n")
	b.WriteString("\n## Fields\n")
	for _, f := range a.Fields {
		fmt.Fprintf(&b, "- %s (%s", f.Name, fieldTypeLabel(f))
		b.WriteString(")")
		if f.Description != "" {
			b.WriteString(": ")
			b.WriteString(oneLine(f.Description))
		}
		b.WriteString("\n")
	}
	b.WriteString("\n## Rules\n" +
		"- Use only what the call shows; never guess.\n" +
		"- Use null when the call does not give a value.\n" +
		"- Enum fields take one of the listed values exactly, or null.\n" +
		"- Dates are YYYY-MM-DD; integers have no decimals.\n" +
		"- Write free text in the language of the call unless the instructions above say otherwise.\n")
	if a.Evidence != agent.EvidenceOff {
		b.WriteString("- A field with a quote is {\"quote\": ..., \"value\": ...}; the quote is null when the value is null.\n")
		b.WriteString(evidenceRules)
		var out []string
		for _, f := range a.Fields {
			if !a.WantsEvidence(f) {
				out = append(out, f.Name)
			}
		}
		if len(out) > 0 {
			b.WriteString("- These fields take no quote: " + strings.Join(out, ", ") + ".\n")
		}
	}
	return b.String()
}

// evidenceRules are the system message's rules for quotes (analysis and
// QC with evidence on). A quote that is not in the transcript is flagged or
// withheld; the words say so to keep the model from inventing one.
const evidenceRules = "- Each quote is copied verbatim from the transcript: the exact words of one turn " +
	"(or of consecutive turns of the same speaker) that establish the value, without the speaker label or time, " +
	"not a summary or paraphrase. A value whose quote is not in the transcript is not trusted.\n"

func fieldTypeLabel(f agent.Field) string {
	switch f.Type {
	case agent.FieldEnum:
		return "one of: " + strings.Join(f.Values, ", ")
	case agent.FieldDate:
		return "date YYYY-MM-DD"
	}
	return string(f.Type)
}

// qcSystem is the static system message of a QC request.
func qcSystem(q *agent.QC) string {
	var b strings.Builder
	b.WriteString(strings.TrimSpace(q.Prompt))
	b.WriteString("\n\n## Task\n")
	b.WriteString("You judge one finished phone call of a voice AI agent against the checklist below. " +
		"The call's facts and transcript are in the next message. " +
		"For every item give short evidence from the call, then whether the agent passed it.\n")
	b.WriteString("\n## Checklist\n")
	for _, it := range q.Checklist {
		fmt.Fprintf(&b, "- %s: %s\n", it.ID, oneLine(it.Description))
	}
	b.WriteString("\n## Rules\n" +
		"- Judge the agent's behaviour only, from the transcript.\n" +
		"- Answer with one JSON object keyed by item id, following the response schema.\n")
	if q.Evidence != agent.EvidenceOff {
		b.WriteString("- Each item's evidence is a quote; it is null when the verdict rests on something the call lacks.\n")
		b.WriteString(evidenceRules)
	}
	return b.String()
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// callMessage is the per-call user message: call facts, contact data,
// function output and the transcript, always in this order.
func callMessage(in Input) string {
	var b strings.Builder
	b.WriteString("## Call\n")
	fact := func(name, value string) {
		if value != "" {
			fmt.Fprintf(&b, "- %s: %s\n", name, oneLine(value))
		}
	}
	fact("direction", in.Direction)
	fact("ended_reason", in.EndedReason)
	fact("disconnected_by", in.DisconnectedBy)
	if in.StartedAt != nil {
		fact("started_at", in.StartedAt.UTC().Format(time.RFC3339))
	}
	if in.EndedAt != nil {
		fact("ended_at", in.EndedAt.UTC().Format(time.RFC3339))
	}
	if in.Duration != nil {
		fact("duration_seconds", strconv.FormatFloat(*in.Duration, 'f', -1, 64))
	}
	fact("customer_name", in.CustomerName)
	writeJSON(&b, "Contact data", in.ContactData)
	writeJSON(&b, "Function output", in.FunctionOutput)
	b.WriteString("\n## Transcript\n")
	if len(in.Transcript) == 0 {
		b.WriteString("(empty)\n")
	}
	for _, t := range in.Transcript {
		if t.TMs != nil {
			b.WriteString("[" + clock(*t.TMs) + "] ")
		}
		b.WriteString(orDefault(t.Role, "unknown"))
		b.WriteString(": ")
		b.WriteString(oneLine(t.Text))
		b.WriteString("\n")
	}
	return b.String()
}

// writeJSON adds a compacted JSON section, if there is anything in it.
func writeJSON(b *strings.Builder, title string, raw json.RawMessage) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" || string(raw) == "{}" {
		return
	}
	var c bytes.Buffer
	if err := json.Compact(&c, raw); err != nil {
		// Not JSON: quote it as text rather than losing it.
		c.Reset()
		q, _ := json.Marshal(string(raw))
		c.Write(q)
	}
	fmt.Fprintf(b, "\n## %s\n%s\n", title, c.String())
}

// clock formats a call offset as m:ss, or h:mm:ss past an hour.
func clock(ms int64) string {
	if ms < 0 {
		ms = 0
	}
	s := ms / 1000
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}

// repairMessage asks the model to fix its previous answer.
func repairMessage(violations []string) string {
	var b strings.Builder
	b.WriteString("Your answer does not follow the response schema:\n")
	for _, v := range violations {
		b.WriteString("- ")
		b.WriteString(v)
		b.WriteString("\n")
	}
	b.WriteString("Answer again with the whole corrected JSON object only.")
	return b.String()
}
