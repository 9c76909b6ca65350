package retention_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/retention"
	"github.com/postcall/postcall/store"
)

// TestPurgeNullsEvidenceQuotes checks that the purge nulls every evidence
// quote of a call's analysis runs (quotes are transcript text, of pii
// fields or not) and drops the values require withheld, keeping each
// quote's turn and verified, and says so in the audit; a call not due
// keeps its quotes.
func TestPurgeNullsEvidenceQuotes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	b.applyPlan(t, "ev", "")
	due := b.seedCall(t, b.pool, "ev", seedOpts{endedAgo: 40 * day})
	kept := b.seedCall(t, b.pool, "ev", seedOpts{endedAgo: time.Hour})
	withEvidence := func(s *seeded) []string {
		tag := s.callID[len("call-"):]
		quotes := []string{"QUOTE-" + tag, "WITHHELD-" + tag, "TOPICQUOTE-" + tag}
		evidence := fmt.Sprintf(`{
			"outcome": {"quote": "yes %s", "turn": 1, "verified": true},
			"email": {"quote": "my email is %s", "turn": null, "verified": false, "withheld": "%s@example.com"},
			"topic": {"quote": "%s", "turn": 1, "verified": true}}`, quotes[0], quotes[0], quotes[1], quotes[2])
		_, err := b.pool.Exec(ctx, `UPDATE analysis_runs r SET evidence = $2, unverified = '{email}'
			FROM calls c WHERE c.analysis_run_id = r.id AND c.id = $1`, s.id, evidence)
		require.NoError(t, err)
		return quotes
	}
	dueQuotes, keptQuotes := withEvidence(due), withEvidence(kept)

	_, err := b.svc.Purge(ctx, retention.RunOptions{})
	require.NoError(t, err)

	require.Empty(t, b.found(t, dueQuotes), "no quote of a purged call is left anywhere")
	require.Len(t, b.found(t, keptQuotes), len(keptQuotes), "a call not due keeps its quotes")

	var evidence []byte
	var unverified []string
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT r.evidence, r.unverified FROM analysis_runs r
		JOIN calls c ON c.analysis_run_id = r.id WHERE c.id = $1`, due.id).Scan(&evidence, &unverified))
	var got map[string]map[string]any
	require.NoError(t, json.Unmarshal(evidence, &got))
	require.Equal(t, map[string]map[string]any{
		"outcome": {"quote": nil, "turn": float64(1), "verified": true},
		"email":   {"quote": nil, "turn": nil, "verified": false},
		"topic":   {"quote": nil, "turn": float64(1), "verified": true},
	}, got)
	require.Equal(t, []string{"email"}, unverified, "field names are not personal data")

	var removed []string
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT removed FROM retention_audit WHERE call_uuid = $1`, due.id).Scan(&removed))
	require.Contains(t, removed, "analysis.evidence")
}

// TestLateResultNullsEvidenceQuotes checks that evidence a run stores after
// its call was purged is purged in the same transaction
// (RedactLateResult, as pipeline.Service.Store calls it).
func TestLateResultNullsEvidenceQuotes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	b.applyPlan(t, "late", "")
	s := b.seedCall(t, b.pool, "late", seedOpts{endedAgo: 40 * day})
	_, err := b.svc.Purge(ctx, retention.RunOptions{})
	require.NoError(t, err)
	quote := "LATEQUOTE-" + s.callID[len("call-"):]
	_, err = b.pool.Exec(ctx, `UPDATE analysis_runs r SET evidence = $2
		FROM calls c WHERE c.analysis_run_id = r.id AND c.id = $1`, s.id,
		fmt.Sprintf(`{"topic": {"quote": "it is about %s", "turn": 1, "verified": true}}`, quote))
	require.NoError(t, err)
	require.Len(t, b.found(t, []string{quote}), 1)

	c, err := store.GetCall(ctx, b.pool, s.id.String())
	require.NoError(t, err)
	require.NoError(t, pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error { return retention.RedactLateResult(ctx, tx, c) }))
	require.Empty(t, b.found(t, []string{quote}))
	audit, err := retention.CallAudit(ctx, b.pool, s.id.String())
	require.NoError(t, err)
	require.Equal(t, retention.ReasonLateResult, audit[len(audit)-1].Reason)
	require.Equal(t, []string{"analysis.evidence"}, audit[len(audit)-1].Removed)
}
