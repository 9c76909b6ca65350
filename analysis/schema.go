package analysis

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/postcall/postcall/agent"
)

// Schema names sent to the provider.
const (
	analysisSchemaName = "postcall_analysis"
	qcSchemaName       = "postcall_qc"
)

// object is a JSON object that keeps its keys in insertion order. Strict
// structured outputs generate properties in schema order, so the order of
// the plan's fields is kept (e.g. a summary before the disposition), and the
// bytes are the same on every build of one plan.
type object []member

type member struct {
	key   string
	value any
}

// MarshalJSON writes the members in order.
func (o object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(m.key)
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(m.value)
		if err != nil {
			return nil, fmt.Errorf("schema key %s: %w", m.key, err)
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// AnalysisSchema is the strict JSON schema of an analysis answer: an object
// with exactly the plan's fields, in plan order, all required and all
// nullable (null = the call does not say), so that a missing value is an
// explicit null rather than an omitted key. With analysis.evidence, each
// field that keeps evidence is an object {quote, value}: the quote first,
// so that the model finds the words before it states the value.
func AnalysisSchema(a *agent.Analysis) json.RawMessage {
	props := make(object, 0, len(a.Fields))
	required := make([]string, 0, len(a.Fields))
	for _, f := range a.Fields {
		s := fieldSchema(f)
		if a.WantsEvidence(f) {
			s = object{
				{"type", "object"},
				{"properties", object{{"quote", quoteSchema}, {"value", s}}},
				{"required", []string{"quote", "value"}},
				{"additionalProperties", false},
			}
		}
		props = append(props, member{f.Name, s})
		required = append(required, f.Name)
	}
	return mustJSON(object{
		{"type", "object"},
		{"properties", props},
		{"required", required},
		{"additionalProperties", false},
	})
}

// quoteSchema is a quote's schema: a nullable string, without a
// description: the system message's rules say what a quote is once, where a
// description would repeat it for every field and item (measured: 20 tokens
// each).
var quoteSchema = object{{"type", []string{"string", "null"}}}

func fieldSchema(f agent.Field) object {
	var s object
	desc := f.Description
	switch f.Type {
	case agent.FieldEnum:
		values := make([]any, 0, len(f.Values)+1)
		for _, v := range f.Values {
			values = append(values, v)
		}
		values = append(values, nil)
		s = object{{"type", []string{"string", "null"}}, {"enum", values}}
	case agent.FieldDate:
		s = object{{"type", []string{"string", "null"}}, {"format", "date"}}
		desc = joinSentences(desc, "Date as YYYY-MM-DD.")
	default: // string, number, integer, boolean share their JSON schema name
		s = object{{"type", []string{string(f.Type), "null"}}}
	}
	if desc != "" {
		s = append(s, member{"description", desc})
	}
	return s
}

// QCSchema is the strict JSON schema of a QC answer: an object keyed by
// checklist item id, in checklist order, each {evidence, passed}, all
// required, so the model must judge every item. Evidence comes first so the
// model cites the transcript before it gives the verdict. With qc.evidence
// the evidence is {quote, passed} instead: a verbatim quote or null.
func QCSchema(q *agent.QC) json.RawMessage {
	props := make(object, 0, len(q.Checklist))
	required := make([]string, 0, len(q.Checklist))
	key, evidence := "evidence", object{{"type", "string"}, {"description", "Short quote or paraphrase from the transcript supporting the verdict."}}
	if q.Evidence != agent.EvidenceOff {
		key, evidence = "quote", quoteSchema
	}
	for _, it := range q.Checklist {
		props = append(props, member{it.ID, object{
			{"type", "object"},
			{"description", it.Description},
			{"properties", object{
				{key, evidence},
				{"passed", object{{"type", "boolean"}}},
			}},
			{"required", []string{key, "passed"}},
			{"additionalProperties", false},
		}})
		required = append(required, it.ID)
	}
	return mustJSON(object{
		{"type", "object"},
		{"properties", props},
		{"required", required},
		{"additionalProperties", false},
	})
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		// Only strings, bools, slices and objects of those are marshalled.
		panic(fmt.Sprintf("marshal schema: %v", err))
	}
	return b
}

func joinSentences(a, b string) string {
	if a == "" {
		return b
	}
	if last := a[len(a)-1]; last != '.' && last != '!' && last != '?' {
		a += "."
	}
	return a + " " + b
}
