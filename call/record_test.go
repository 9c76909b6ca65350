package call

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestNormalizePhone(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"+14155550100":          "+14155550100",
		"+1 (415) 555-0100":     "+14155550100",
		"+1.415.555.0100":       "+14155550100",
		" +44 20 7946 0000 ":    "+442079460000",
		"0044 20 7946 0000":     "+442079460000",
		"tel:+1-415-555-0100":   "+14155550100",
		"TEL:+14155550100":      "+14155550100",
		"14155550100":           "+14155550100",
		"(415) 555-0100":        "+4155550100",
		"anonymous":             "",
		"Restricted":            "",
		"":                      "",
		"+1 415 555 0100 x12":   "",
		"+1+4155550100":         "",
		"1+4155550100":          "",
		"123456":                "",
		"1234567":               "+1234567",
		"+1234567890123456":     "",
		"+123456789012345":      "+123456789012345",
		"+1 415 555 0100 ext 2": "",
	}
	for in, want := range cases {
		require.Equal(t, want, NormalizePhone(in), "input %q", in)
	}
}

func TestUserTurns(t *testing.T) {
	t.Parallel()
	r := &Record{Transcript: []Turn{
		{Role: RoleAgent, Text: "Hi"},
		{Role: RoleUser, Text: "Hello"},
		{Role: RoleUser, Text: " \n\t"},
		{Role: RoleUser, Text: ""},
		{Role: RoleTool, Text: "result"},
		{Role: RoleUser, Text: "Bye"},
	}}
	require.Equal(t, 2, UserTurns(r))
	require.Equal(t, 0, UserTurns(&Record{}))
}

func TestEffectiveDuration(t *testing.T) {
	t.Parallel()
	end := time.Date(2026, 11, 20, 15, 0, 0, 0, time.UTC)
	answered := end.Add(-42 * time.Second)
	late := end.Add(time.Second)
	talkMs := int64(30500)
	cases := []struct {
		name string
		r    Record
		want time.Duration
		ok   bool
	}{
		{"nothing", Record{EndedAt: end}, 0, false},
		{"duration first", Record{EndedAt: end, Duration: seconds(12.5), TalkMs: &talkMs, AnsweredAt: &answered}, 12500 * time.Millisecond, true},
		{"zero duration is known", Record{EndedAt: end, Duration: seconds(0), TalkMs: &talkMs}, 0, true},
		{"then talk_ms", Record{EndedAt: end, TalkMs: &talkMs, AnsweredAt: &answered}, 30500 * time.Millisecond, true},
		{"then answered_at", Record{EndedAt: end, AnsweredAt: &answered}, 42 * time.Second, true},
		{"answered after end is unknown", Record{EndedAt: end, AnsweredAt: &late}, 0, false},
		{"huge duration saturates", Record{EndedAt: end, Duration: seconds(1e300)}, math.MaxInt64, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, ok := EffectiveDuration(&c.r)
			require.Equal(t, c.ok, ok)
			require.Equal(t, c.want, got)
		})
	}
}
