package calldoc

import (
	"bytes"
	"encoding/json"
	"slices"

	"github.com/postcall/postcall/store"
)

// Changes is what changed between the call's two latest succeeded analysis
// runs, field by field, and the QC score between its two latest succeeded
// QC runs.
type Changes struct {
	// From and To are the analysis runs compared (older, newer); 0 when
	// there are fewer than two.
	From, To int64
	// Fields are the fields whose value differs, in the newer run's order,
	// then the fields only the older run had.
	Fields []FieldChange
	// QCFrom and QCTo are the QC runs compared; 0 when fewer than two.
	QCFrom, QCTo int64
	// ScoreBefore and ScoreAfter are their scores.
	ScoreBefore, ScoreAfter *int
}

// FieldChange is one field's old and new value as compact JSON; nil when
// the run lacked the field.
type FieldChange struct {
	Field    string
	Old, New json.RawMessage
}

// Changes compares the two latest succeeded runs of each kind. Runs are
// newest first in the document.
func (d *Document) Changes() Changes {
	var ch Changes
	var analysisRuns, qcRuns []*Run
	for i := range d.Runs {
		r := &d.Runs[i]
		if r.Status != store.RunSucceeded {
			continue
		}
		switch r.Kind {
		case "analysis":
			analysisRuns = append(analysisRuns, r)
		case "qc":
			qcRuns = append(qcRuns, r)
		}
	}
	if len(analysisRuns) >= 2 {
		newer, older := analysisRuns[0], analysisRuns[1]
		ch.From, ch.To = older.ID, newer.ID
		ch.Fields = diffFields(d.outputs[older.ID], d.outputs[newer.ID])
	}
	if len(qcRuns) >= 2 {
		ch.QCFrom, ch.QCTo = qcRuns[1].ID, qcRuns[0].ID
		ch.ScoreBefore, ch.ScoreAfter = qcRuns[1].Score, qcRuns[0].Score
	}
	return ch
}

// diffFields compares two analysis outputs (JSON objects).
func diffFields(old, new json.RawMessage) []FieldChange {
	oldKeys, oldVals := OrderedFields(old)
	newKeys, newVals := OrderedFields(new)
	var out []FieldChange
	for _, k := range newKeys {
		if o, ok := oldVals[k]; !ok || !bytes.Equal(o, newVals[k]) {
			out = append(out, FieldChange{Field: k, Old: oldVals[k], New: newVals[k]})
		}
	}
	for _, k := range oldKeys {
		if !slices.Contains(newKeys, k) {
			out = append(out, FieldChange{Field: k, Old: oldVals[k]})
		}
	}
	return out
}

// OrderedFields reads a JSON object's keys in their order and its values
// as compact JSON; nothing for anything but an object.
func OrderedFields(obj json.RawMessage) ([]string, map[string]json.RawMessage) {
	vals := map[string]json.RawMessage{}
	dec := json.NewDecoder(bytes.NewReader(obj))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, vals
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return keys, vals
		}
		k, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return keys, vals
		}
		var buf bytes.Buffer
		if json.Compact(&buf, v) == nil {
			v = buf.Bytes()
		}
		if _, dup := vals[k]; !dup {
			keys = append(keys, k)
		}
		vals[k] = v
	}
	return keys, vals
}
