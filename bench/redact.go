package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/postcall/postcall/call"
	"github.com/postcall/postcall/redact"
)

// speechWordsPerMinute is a brisk phone conversation, both speakers.
const speechWordsPerMinute = 160

// redactConversation is the material of the benchmark's transcript: a support
// call with every kind of entity and plenty of numbers that are none.
var redactConversation = []call.Turn{
	{Role: call.RoleAgent, Text: "Thanks for calling ACME billing, this is Sam. Can I have your date of birth to verify?"},
	{Role: call.RoleUser, Text: "Sure, it's March 14th, 1985, and my zip is 94107."},
	{Role: call.RoleAgent, Text: "Thank you. I see two charges of $54.20 on November 3rd and a balance of $1,299.99."},
	{Role: call.RoleUser, Text: "Right, I want to pay the balance today with my visa, four one one one, one one one one"},
	{Role: call.RoleUser, Text: "one one one one, one one one one, expiry twelve twenty seven, code seven three seven"},
	{Role: call.RoleAgent, Text: "Got it. And the email for the receipt, and a callback number in case there's a problem?"},
	{Role: call.RoleUser, Text: "dana dot smith at example dot com, and my cell is (415) 867-5309 after 5 pm."},
	{Role: call.RoleAgent, Text: "Your confirmation number is 7845 1293 and your order 4492 8871 3306 ships on the 21st."},
	{Role: call.RoleUser, Text: "Great. For the refund use my IBAN, DE89 3704 0044 0532 0130 00, or my checking account"},
	{Role: call.RoleAgent, Text: "We'd need the routing number and the account number for that."},
	{Role: call.RoleUser, Text: "Routing is 021000021 and the account is 000123456789. My social is 219-09-9999 if you need it."},
	{Role: call.RoleAgent, Text: "We don't need your social, thanks. Is there anything else I can help you with today?"},
	{Role: call.RoleUser, Text: "No, that's everything. I've been a customer since 2019 and you've always been great."},
	{Role: call.RoleAgent, Text: "Thank you for being with us. You'll get an email within 24 hours. Have a good one."},
}

// tenMinuteTranscript repeats redactConversation until it holds ten minutes
// of speech.
func tenMinuteTranscript() []call.Turn {
	var turns []call.Turn
	for words := 0; words < 10*speechWordsPerMinute; {
		for _, t := range redactConversation {
			turns = append(turns, t)
			words += len(strings.Fields(t.Text))
		}
	}
	return turns
}

// benchmarkRedact redacts every entity of the ten-minute transcript.
func benchmarkRedact(b *testing.B, turns []call.Turn) {
	r := redact.New(redact.Entities)
	b.ReportAllocs()
	for b.Loop() {
		r.Transcript(turns)
	}
}

// benchmarkEncode JSON-encodes the transcript, as ingest does to store it:
// the baseline redaction is compared to.
func benchmarkEncode(b *testing.B, turns []call.Turn) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(turns); err != nil {
			b.Fatal(err)
		}
	}
}

// runRedact measures the redaction of a ten-minute transcript with every
// entity on (target: under 1 ms), against encoding the same transcript.
func runRedact(ctx context.Context, e *env) (*result, error) {
	turns := tenMinuteTranscript()
	size, words := 0, 0
	for _, t := range turns {
		size += len(t.Text)
		words += len(strings.Fields(t.Text))
	}
	red := testing.Benchmark(func(b *testing.B) { benchmarkRedact(b, turns) })
	enc := testing.Benchmark(func(b *testing.B) { benchmarkEncode(b, turns) })
	if red.N == 0 || enc.N == 0 {
		return nil, fmt.Errorf("benchmark did not run")
	}
	ms := func(r testing.BenchmarkResult) float64 { return float64(r.NsPerOp()) / 1e6 }
	return &result{
		Metrics: []metric{
			{Name: "redact a 10-minute transcript", Value: ms(red), Unit: "ms", Decimals: 3, Target: atMost(1)},
			{Name: "JSON-encode it (baseline)", Value: ms(enc), Unit: "ms", Decimals: 3},
			{Name: "redact / encode", Value: float64(red.NsPerOp()) / float64(enc.NsPerOp()), Unit: "x", Decimals: 1},
		},
		Notes: []string{
			fmt.Sprintf("Transcript: %d turns, %d words (10 minutes at %d words/min), %d bytes, every entity present "+
				"several times, every entity redacted.", len(turns), words, speechWordsPerMinute, size),
			fmt.Sprintf("testing.Benchmark: redaction %d iterations, %d allocs/op, %d B/op; encoding %d allocs/op. "+
				"Also `go test -run '^$' -bench Redact ./bench`.", red.N, red.AllocsPerOp(), red.AllocedBytesPerOp(), enc.AllocsPerOp()),
		},
	}, ctx.Err()
}
