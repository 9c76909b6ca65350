package analysis

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/postcall/postcall/agent"
)

// Violation messages name fields and expectations but never quote the
// model's values: those come from the call and may be personal data, and
// the messages end up in errors and logs. The model sees its own answer in
// the repair request anyway.

// decodeObject parses an answer that must be one JSON object, keeping
// numbers exact.
func decodeObject(content string) (map[string]json.RawMessage, []string) {
	content = strings.TrimSpace(content)
	if content == "" {
		return nil, []string{"the answer is empty; it must be one JSON object"}
	}
	dec := json.NewDecoder(strings.NewReader(content))
	var obj map[string]json.RawMessage
	if err := dec.Decode(&obj); err != nil {
		return nil, []string{"the answer is not one valid JSON object (" + jsonProblem(err) + ")"}
	}
	if obj == nil {
		return nil, []string{"the answer is null; it must be one JSON object"}
	}
	if dec.More() {
		return nil, []string{"the answer has text after the JSON object"}
	}
	return obj, nil
}

// jsonProblem describes a decode error without echoing the input.
func jsonProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("syntax error at byte %d", syn.Offset)
	case errors.As(err, &typ):
		return "the top level is " + typ.Value + ", not an object"
	case err.Error() == "unexpected EOF":
		return "it ends early"
	}
	return "it does not parse"
}

// keySet checks that obj has exactly the wanted keys.
func keySet(obj map[string]json.RawMessage, want []string, what string) []string {
	var v []string
	for _, k := range want {
		if _, ok := obj[k]; !ok {
			v = append(v, fmt.Sprintf("%s %s is missing", what, k))
		}
	}
	var extra []string
	for k := range obj {
		if !slices.Contains(want, k) {
			extra = append(extra, k)
		}
	}
	slices.Sort(extra) // map order must not leak into the repair message
	for _, k := range extra {
		v = append(v, fmt.Sprintf("%s %s is not in the schema; remove it", what, strings.ToValidUTF8(shorten(k, 64), "?")))
	}
	return v
}

// validateAnalysis checks an analysis answer against the plan's fields and
// returns the typed values: string (string, enum, date), float64 (number),
// int64 (integer), bool (boolean) or nil, for every field; and, for the
// fields that keep evidence, their quotes (nil: null).
func validateAnalysis(a *agent.Analysis, content string) (map[string]any, map[string]*string, []string) {
	obj, v := decodeObject(content)
	if v != nil {
		return nil, nil, v
	}
	names := make([]string, len(a.Fields))
	for i, f := range a.Fields {
		names[i] = f.Name
	}
	v = keySet(obj, names, "field")
	fields := make(map[string]any, len(a.Fields))
	var quotes map[string]*string
	for _, f := range a.Fields {
		fields[f.Name] = nil
		raw, ok := obj[f.Name]
		if !ok {
			continue
		}
		if a.WantsEvidence(f) {
			var problems []string
			var quote *string
			raw, quote, problems = quotedValue(f.Name, raw)
			if problems != nil {
				v = append(v, problems...)
				continue
			}
			if quotes == nil {
				quotes = map[string]*string{}
			}
			quotes[f.Name] = quote
		}
		val, problem := fieldValue(f, raw)
		if problem != "" {
			v = append(v, fmt.Sprintf("field %s: %s", f.Name, problem))
			continue
		}
		fields[f.Name] = val
	}
	if v != nil {
		return nil, nil, v
	}
	return fields, quotes, nil
}

// quotedValue splits a field answered as {quote, value}.
func quotedValue(name string, raw json.RawMessage) (json.RawMessage, *string, []string) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return nil, nil, []string{fmt.Sprintf("field %s must be an object {quote, value}", name)}
	}
	v := keySet(obj, []string{"quote", "value"}, "field "+name+" key")
	quote, problem := optionalString(obj["quote"])
	if problem {
		v = append(v, fmt.Sprintf("field %s: quote must be a string or null", name))
	}
	if v != nil {
		return nil, nil, v
	}
	return obj["value"], quote, nil
}

// optionalString decodes a JSON string or null (or an absent value) and
// reports anything else.
func optionalString(raw json.RawMessage) (*string, bool) {
	if len(raw) == 0 || isNull(raw) {
		return nil, false
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, true
	}
	return &s, false
}

// fieldValue decodes one field's value or says what is wrong with it.
func fieldValue(f agent.Field, raw json.RawMessage) (any, string) {
	raw = bytes.TrimSpace(raw)
	if isNull(raw) {
		return nil, ""
	}
	switch f.Type {
	case agent.FieldString, agent.FieldEnum, agent.FieldDate:
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, "must be a string or null"
		}
		switch f.Type {
		case agent.FieldEnum:
			if !slices.Contains(f.Values, s) {
				return nil, "must be one of " + strings.Join(f.Values, ", ") + " or null"
			}
		case agent.FieldDate:
			// time.Parse rejects impossible dates such as 2025-02-30.
			if _, err := time.Parse(time.DateOnly, s); err != nil {
				return nil, "must be a real calendar date as YYYY-MM-DD, or null"
			}
		}
		return s, ""
	case agent.FieldBoolean:
		var b bool
		if err := json.Unmarshal(raw, &b); err != nil {
			return nil, "must be true, false or null"
		}
		return b, ""
	case agent.FieldNumber, agent.FieldInteger:
		var n json.Number
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&n); err != nil || raw[0] == '"' {
			return nil, fmt.Sprintf("must be a JSON %s or null", f.Type)
		}
		x, err := n.Float64()
		if err != nil || math.IsInf(x, 0) {
			return nil, "is out of range"
		}
		if f.Type == agent.FieldNumber {
			return x, ""
		}
		// 3 and 3.0 are the same integer; 3.5 is not one.
		if x != math.Trunc(x) {
			return nil, "must be a whole number (integer) or null"
		}
		if math.Abs(x) > 1<<53 {
			return nil, "is out of range"
		}
		return int64(x), ""
	}
	return nil, fmt.Sprintf("has unknown type %s", f.Type)
}

// validateQC checks a QC answer and returns the verdicts in checklist order.
func validateQC(q *agent.QC, content string) ([]Verdict, []string) {
	obj, v := decodeObject(content)
	if v != nil {
		return nil, v
	}
	ids := make([]string, len(q.Checklist))
	for i, it := range q.Checklist {
		ids[i] = it.ID
	}
	v = keySet(obj, ids, "item")
	// With evidence, an item's evidence is answered as a quote.
	key := "evidence"
	if q.Evidence != agent.EvidenceOff {
		key = "quote"
	}
	verdicts := make([]Verdict, 0, len(q.Checklist))
	for _, it := range q.Checklist {
		raw, ok := obj[it.ID]
		if !ok {
			continue
		}
		var item map[string]json.RawMessage
		if err := json.Unmarshal(raw, &item); err != nil || item == nil {
			v = append(v, fmt.Sprintf("item %s must be an object {%s, passed}", it.ID, key))
			continue
		}
		problems := keySet(item, []string{key, "passed"}, "item "+it.ID+" key")
		verdict := Verdict{ID: it.ID}
		if p, ok := item["passed"]; ok && (isNull(p) || json.Unmarshal(p, &verdict.Passed) != nil) {
			problems = append(problems, fmt.Sprintf("item %s: passed must be true or false", it.ID))
		}
		if key == "quote" {
			quote, bad := optionalString(item["quote"])
			if bad {
				problems = append(problems, fmt.Sprintf("item %s: quote must be a string or null", it.ID))
			} else if quote != nil {
				verdict.Evidence = *quote
			}
		} else if e, ok := item["evidence"]; ok && (isNull(e) || json.Unmarshal(e, &verdict.Evidence) != nil) {
			problems = append(problems, fmt.Sprintf("item %s: evidence must be a string", it.ID))
		}
		v = append(v, problems...)
		verdicts = append(verdicts, verdict)
	}
	if v != nil {
		return nil, v
	}
	return verdicts, nil
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }
