package analysis

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/postcall/postcall/agent"
)

// FuzzValidateAnalysis feeds arbitrary model output to the validator: it
// must never panic, and whatever it accepts must hold every plan field with
// a value of the field's type (what the store and the CRM payloads rely on).
// No violation message may quote the model's values (they can be personal
// data).
func FuzzValidateAnalysis(f *testing.F) {
	plan := fuzzPlan()
	for _, seed := range []string{
		`{"summary":"ok","outcome":"agreed","success":true,"score":3,"amount":1.5,"day":"2026-02-28"}`,
		`{"summary":null,"outcome":null,"success":null,"score":null,"amount":null,"day":null}`,
		`{"summary":"x","outcome":"nope","success":"yes","score":2.5,"amount":"1","day":"2026-02-30"}`,
		`{"summary":"x","outcome":"SECRET123","success":"SECRET456","score":"SECRET789","amount":null,"day":"SECRET1"}`,
		`{"summary":"x"} trailing`, `[]`, `null`, ``, `{"score":1e400}`, `{"score":3.0}`,
	} {
		f.Add(seed)
	}
	secret := regexp.MustCompile(`SECRET\d+`)
	f.Fuzz(func(t *testing.T, content string) {
		fields, _, violations := validateAnalysis(plan.Analysis, content)
		if violations != nil {
			if fields != nil {
				t.Fatalf("violations %v with fields %v", violations, fields)
			}
			for _, v := range violations {
				if m := secret.FindString(v); m != "" && strings.Contains(content, m) {
					t.Fatalf("violation %q quotes the model's output", v)
				}
			}
			return
		}
		if len(fields) != len(plan.Analysis.Fields) {
			t.Fatalf("accepted %d fields, plan has %d", len(fields), len(plan.Analysis.Fields))
		}
		for _, fd := range plan.Analysis.Fields {
			v, ok := fields[fd.Name]
			if !ok {
				t.Fatalf("field %s missing", fd.Name)
			}
			if v == nil {
				continue
			}
			switch fd.Type {
			case agent.FieldString:
				_, ok = v.(string)
			case agent.FieldEnum:
				var s string
				s, ok = v.(string)
				ok = ok && (s == "agreed" || s == "declined")
			case agent.FieldDate:
				var s string
				if s, ok = v.(string); ok {
					_, err := time.Parse("2006-01-02", s)
					ok = err == nil
				}
			case agent.FieldBoolean:
				_, ok = v.(bool)
			case agent.FieldInteger:
				_, ok = v.(int64)
			case agent.FieldNumber:
				_, ok = v.(float64)
			}
			if !ok {
				t.Fatalf("field %s (%s) accepted as %T %v", fd.Name, fd.Type, v, v)
			}
		}
		if _, err := json.Marshal(fields); err != nil {
			t.Fatalf("accepted fields do not marshal: %v", err)
		}
	})
}

func fuzzPlan() *agent.Plan {
	plans, err := agent.ParsePlans([]byte(`
id: fuzz
analysis:
  prompt: p
  fields:
    - {name: summary, type: string}
    - {name: outcome, type: enum, values: [agreed, declined]}
    - {name: success, type: boolean}
    - {name: score, type: integer}
    - {name: amount, type: number}
    - {name: day, type: date}
`))
	if err != nil {
		panic(err)
	}
	return &plans[0]
}
