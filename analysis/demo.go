package analysis

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/postcall/postcall/analysis/internal/schemaexample"
)

// DemoModelName is the Response.Model of every Demo answer, so that a demo
// result is never mistaken for a real analysis.
const DemoModelName = "postcall-demo"

// Demo is a Model that answers offline, for demos without an LLM endpoint.
// It reads the request as a model would (the call message's transcript and
// the schema's fields and checklist) with the simple rules of demo_rules.go:
// emails, phone numbers and dates the customer said, enum fields and
// booleans from the outcome's key phrases ("sounds good", "not interested",
// "call me back"), numbers said next to a field's name, and checklist items
// passed by key phrases in agent turns, with that turn as evidence. What the
// rules do not find is null (or, for a checklist item, failed with "not
// found in the transcript"): the demo invents no facts. Text it writes
// itself (the summary, evidence) starts with "[demo]". Its answers follow
// the request's schema and are deterministic. With evidence on, a value's
// quote is the words of the turn it came from, so demo evidence verifies as
// a real model's does. Usage is zero.
type Demo struct{}

// Complete answers the request without network.
func (Demo) Complete(ctx context.Context, req Request) (*Response, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := req.validate(); err != nil {
		return nil, fmt.Errorf("demo request: %w", err)
	}
	if req.Schema == nil {
		return &Response{Content: "[demo] no analysis: this answer comes from the offline demo model", Model: DemoModelName, FinishReason: "stop"}, nil
	}
	answers, err := demoAnswers(req)
	if err != nil {
		return nil, fmt.Errorf("demo answer: %w", err)
	}
	content, err := schemaexample.Generate(req.Schema.Definition, schemaexample.Choices{
		Null: func(path, _ string) bool {
			_, ok := answers[path]
			return !ok
		},
		String: func(path string) string {
			if s, ok := answers[path].(string); ok {
				return s
			}
			return "[demo] " + path + " (generated without a model)"
		},
		Enum: func(path string, values []any) any {
			if v, ok := answers[path]; ok && slices.Contains(values, v) {
				return v
			}
			return values[0]
		},
		Bool: func(path string) bool {
			b, _ := answers[path].(bool)
			return b
		},
		Date: func(path string) string {
			if s, ok := answers[path].(string); ok {
				return s
			}
			return "2000-01-01"
		},
		Number: func(path string) float64 {
			x, _ := answers[path].(float64)
			return x
		},
		Integer: func(path string) int64 {
			n, _ := answers[path].(int64)
			return n
		},
	})
	if err != nil {
		return nil, fmt.Errorf("demo answer: %w", err)
	}
	return &Response{Content: string(content), Model: DemoModelName, FinishReason: "stop"}, nil
}

// demoAnswers reads the call and returns the answer's values by schema path
// ("outcome", "greeting.evidence"). A path without a value is null where
// the schema allows it. A schema the demo does not know gets no values.
func demoAnswers(req Request) (map[string]any, error) {
	c, values, quotes, err := demoRead(req)
	if err != nil {
		return nil, err
	}
	answers := make(map[string]any, 2*len(values))
	for name, f := range values {
		// A quote is only given for what was read from a turn: a value from
		// the call's facts, or a null one, has nothing to quote.
		quoted := f.turn >= 0 && f.value != nil && f.quote != ""
		switch {
		case req.Schema.Name == qcSchemaName && quotes[name]:
			answers[name+".passed"] = f.value
			if quoted && f.value == true {
				answers[name+".quote"] = f.quote
			}
		case req.Schema.Name == qcSchemaName:
			answers[name+".passed"] = f.value
			answers[name+".evidence"] = c.evidence(f)
		case quotes[name]:
			answers[name+".value"] = f.value
			if quoted {
				answers[name+".quote"] = f.quote
			}
		default:
			answers[name] = f.value
		}
	}
	return answers, nil
}

// demoRead reads the request's call and what the rules find in it: the
// analysis fields' values, or each checklist item's verdict (value true
// when passed), by field name or item id, and which of them ask for a quote
// (evidence on).
func demoRead(req Request) (demoCall, map[string]found, map[string]bool, error) {
	var c demoCall
	for _, m := range req.Messages {
		if m.Role == RoleUser {
			c = readCallMessage(m.Content)
			break
		}
	}
	if req.Schema.Name != analysisSchemaName && req.Schema.Name != qcSchemaName {
		return c, nil, nil, nil
	}
	fields, err := schemaFields(req.Schema.Definition)
	if err != nil {
		return c, nil, nil, err
	}
	quotes := make(map[string]bool)
	for _, f := range fields {
		if f.quoted {
			quotes[f.name] = true
		}
	}
	if req.Schema.Name == qcSchemaName {
		return c, readChecklist(c, fields), quotes, nil
	}
	return c, readAnalysis(c, fields), quotes, nil
}

// schemaFields reads the fields (or checklist items) of an AnalysisSchema
// or QCSchema, in order.
// A field with evidence ({quote, value}) is read from its value's schema; a
// checklist item with evidence has a quote instead of an evidence string.
func schemaFields(def json.RawMessage) ([]demoField, error) {
	type property struct {
		Type        json.RawMessage     `json:"type"`
		Enum        []any               `json:"enum"`
		Format      string              `json:"format"`
		Description string              `json:"description"`
		Properties  map[string]property `json:"properties"`
	}
	var s struct {
		Properties map[string]property `json:"properties"`
		Required   []string            `json:"required"`
	}
	if err := json.Unmarshal(def, &s); err != nil {
		return nil, fmt.Errorf("read schema: %w", err)
	}
	fields := make([]demoField, 0, len(s.Required))
	for _, name := range s.Required {
		p := s.Properties[name]
		_, quoted := p.Properties["quote"]
		if value, ok := p.Properties["value"]; ok {
			p = value
		}
		f := demoField{name: name, description: p.Description, quoted: quoted}
		var types []string
		if json.Unmarshal(p.Type, &types) != nil {
			types = []string{""}
			_ = json.Unmarshal(p.Type, &types[0])
		}
		for _, t := range types {
			if t != "null" {
				f.kind = t
			}
		}
		for _, v := range p.Enum {
			if s, ok := v.(string); ok {
				f.values = append(f.values, s)
			}
		}
		switch {
		case len(p.Enum) > 0:
			f.kind = "enum"
		case p.Format == "date":
			f.kind = "date"
		}
		fields = append(fields, f)
	}
	return fields, nil
}
