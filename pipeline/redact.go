package pipeline

import (
	"github.com/postcall/postcall/agent"
	"github.com/postcall/postcall/call"
	"github.com/postcall/postcall/redact"
)

// redactRecord returns a copy of rec whose transcript has the plan's
// redact entities replaced by placeholders, and the counts (nil when the
// plan redacts nothing). rec is not changed.
func redactRecord(plan *agent.Plan, rec *call.Record) (*call.Record, redact.Counts, error) {
	r, err := plan.Redactor()
	if err != nil {
		return nil, nil, err
	}
	stored := *rec
	var counts redact.Counts
	stored.Transcript, counts = r.Transcript(rec.Transcript)
	return &stored, counts, nil
}
