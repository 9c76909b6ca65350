package jobs_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/agent"
	"github.com/postcall/postcall/call"
	"github.com/postcall/postcall/calldoc"
	"github.com/postcall/postcall/redact"
	"github.com/postcall/postcall/store"
)

// TestIngestRedacts checks that ingest stores only the redacted transcript
// and the counts, leaves the caller's record and phone_number alone, and
// that an agent without redact stores its transcript as sent with a null
// redaction.
func TestIngestRedacts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, false)
	plans, err := agent.ParsePlans([]byte(planYAML + "redact: {entities: [credit_card, email]}\n"))
	require.NoError(t, err)
	_, _, err = store.ApplyPlan(ctx, b.pool, &plans[0])
	require.NoError(t, err)

	rec := conversation()
	rec.Transcript = []call.Turn{
		{Role: call.RoleAgent, Text: "Card number please."},
		{Role: call.RoleUser, Text: "4111 1111 1111 1111, and mail me at dana@example.com, social 219-09-9999"},
	}
	res, err := b.enqueuer.Ingest(ctx, rec)
	require.NoError(t, err)
	require.Equal(t, "4111 1111 1111 1111, and mail me at dana@example.com, social 219-09-9999", rec.Transcript[1].Text,
		"the caller's record is not changed")

	stored, err := store.GetCall(ctx, b.pool, res.ID.String())
	require.NoError(t, err)
	require.Equal(t, "[CREDIT_CARD], and mail me at [EMAIL], social 219-09-9999", stored.Record.Transcript[1].Text,
		"only the listed entities are redacted")
	require.Equal(t, "+15550100001", stored.Record.PhoneNumber)
	counts, err := store.CallRedaction(ctx, b.pool, res.ID)
	require.NoError(t, err)
	require.Equal(t, redact.Counts{redact.CreditCard: 1, redact.Email: 1}, counts)
	doc, err := calldoc.Build(ctx, b.pool, stored, calldoc.Options{})
	require.NoError(t, err)
	js, err := json.Marshal(doc)
	require.NoError(t, err)
	require.Contains(t, string(js), `"redaction":{"credit_card":1,"email":1}`)
	require.NotContains(t, string(js), "4111")

	again, err := b.enqueuer.Ingest(ctx, rec)
	require.NoError(t, err)
	require.True(t, again.Duplicate, "a re-ingest stores nothing, redacted or not")

	// The default: no redact key, nothing redacted, redaction null.
	plans, err = agent.ParsePlans([]byte(planYAML))
	require.NoError(t, err)
	_, _, err = store.ApplyPlan(ctx, b.pool, &plans[0])
	require.NoError(t, err)
	plain := conversation()
	plain.Transcript = rec.Transcript
	res, err = b.enqueuer.Ingest(ctx, plain)
	require.NoError(t, err)
	stored, err = store.GetCall(ctx, b.pool, res.ID.String())
	require.NoError(t, err)
	require.Equal(t, rec.Transcript[1].Text, stored.Record.Transcript[1].Text)
	counts, err = store.CallRedaction(ctx, b.pool, res.ID)
	require.NoError(t, err)
	require.Nil(t, counts)
	doc, err = calldoc.Build(ctx, b.pool, stored, calldoc.Options{})
	require.NoError(t, err)
	js, err = json.Marshal(doc)
	require.NoError(t, err)
	require.Contains(t, string(js), `"redaction":null`)
}
