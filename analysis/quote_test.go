package analysis_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/analysis"
)

// quoteTranscript is a short sales call as speech-to-text writes it: the
// customer's answer is cut into two turns.
var quoteTranscript = []analysis.Turn{
	{Role: "agent", Text: "Hi, this is Ava from ACME. May I record this call?"},
	{Role: "user", Text: "Yes, that's fine. We need about four hundred seats,"},
	{Role: "user", Text: "and my email is dana at example dot com."},
	{Role: "agent", Text: "Great. Shall we book a demo for next Tuesday at ten?"},
	{Role: "user", Text: "Next Tuesday works for me, thanks."},
	{Role: "agent", Text: "Thank you, goodbye!"},
}

func TestFindQuote(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		quote string
		turn  int
		found bool
	}{
		{name: "exact", quote: "Next Tuesday works for me, thanks.", turn: 4, found: true},
		{name: "part of a turn", quote: "book a demo for next Tuesday", turn: 3, found: true},
		{name: "case, punctuation and whitespace ignored", quote: "  NEXT tuesday -- works for me!!", turn: 4, found: true},
		{name: "apostrophe split the same way", quote: "yes that s fine", turn: 1, found: true},
		{name: "one word of ASR noise in five", quote: "we need about for hundred seats", turn: 1, found: true},
		{name: "a dropped word in five", quote: "shall we book demo for next tuesday", turn: 3, found: true},
		{name: "an added word in five", quote: "we need about four hundred of seats", turn: 1, found: true},
		{name: "consecutive turns of one speaker", quote: "about four hundred seats, and my email is dana at example dot com", turn: 1, found: true},
		{name: "first occurrence's turn", quote: "tuesday", turn: 3, found: true},
		{name: "short quote must be exact", quote: "next thursday", found: false},
		{name: "two edits in nine words", quote: "shall we book the meeting for next tuesday at", found: false},
		{name: "paraphrase", quote: "the customer agreed to a demo on Tuesday", found: false},
		{name: "paraphrase of a short answer", quote: "Tuesday is good for me", found: false},
		{name: "fabricated", quote: "please send the contract to my lawyer", found: false},
		{name: "fabricated value in a real sentence", quote: "my email is dana at acme dot org", found: false},
		{name: "across two speakers", quote: "may I record this call? yes, that's fine", found: false},
		{name: "empty", quote: "", found: false},
		{name: "punctuation only", quote: " ... !", found: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			turn, found := analysis.FindQuote(quoteTranscript, tc.quote)
			require.Equal(t, tc.found, found)
			if tc.found {
				require.Equal(t, tc.turn, turn)
			}
		})
	}
}

func TestFindQuoteEmptyTranscript(t *testing.T) {
	t.Parallel()
	_, found := analysis.FindQuote(nil, "anything at all")
	require.False(t, found)
}
