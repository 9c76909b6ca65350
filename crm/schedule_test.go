package crm

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRetryDelay(t *testing.T) {
	t.Parallel()
	plusTenth := func(d time.Duration) time.Duration { return d / 10 }
	tests := []struct {
		attempts int
		plain    time.Duration
		jittered time.Duration
	}{
		{-1, 0, 0},
		{0, 0, 0},
		{1, 5 * time.Second, 5500 * time.Millisecond},
		{2, 5 * time.Minute, 5*time.Minute + 30*time.Second},
		{3, 30 * time.Minute, 33 * time.Minute},
		{4, 2 * time.Hour, 2*time.Hour + 12*time.Minute},
		{5, 5 * time.Hour, 5*time.Hour + 30*time.Minute},
		{6, 10 * time.Hour, 11 * time.Hour},
		{7, 10 * time.Hour, 11 * time.Hour},
		{50, 10 * time.Hour, 11 * time.Hour},
	}
	for _, tt := range tests {
		require.Equal(t, tt.plain, RetryDelay(tt.attempts, nil), "attempts %d", tt.attempts)
		require.Equal(t, tt.jittered, RetryDelay(tt.attempts, plusTenth), "attempts %d", tt.attempts)
	}
	require.Equal(t, time.Duration(0), RetryDelay(1, func(d time.Duration) time.Duration { return -2 * d }), "never negative")
}

func TestScheduleSpansAboutADay(t *testing.T) {
	t.Parallel()
	require.Equal(t, 8, MaxAttempts)
	var total time.Duration
	for n := 0; n < MaxAttempts; n++ {
		total += RetryDelay(n, nil)
	}
	require.Equal(t, 27*time.Hour+35*time.Minute+5*time.Second, total)
}

func TestJitterStaysWithinTenPercent(t *testing.T) {
	t.Parallel()
	base := 10 * time.Hour
	seen := map[bool]bool{}
	for range 1000 {
		j := Jitter(base)
		require.LessOrEqual(t, j, base/10)
		require.GreaterOrEqual(t, j, -base/10)
		seen[j > 0] = true
	}
	require.Len(t, seen, 2, "jitter goes both ways")
	require.Zero(t, Jitter(0))
	require.Zero(t, Jitter(5))
}

func TestShouldDisable(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		first time.Time
		win   time.Duration
		want  bool
	}{
		{"not failing", time.Time{}, 0, false},
		{"failing less than the default window", now.Add(-DefaultDisableWindow + time.Minute), 0, false},
		{"failing exactly the default window", now.Add(-DefaultDisableWindow), 0, true},
		{"failing longer than a custom window", now.Add(-25 * time.Hour), 24 * time.Hour, true},
		{"failing shorter than a custom window", now.Add(-23 * time.Hour), 24 * time.Hour, false},
		{"negative window means default", now.Add(-6 * 24 * time.Hour), -time.Second, true},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, ShouldDisable(tt.first, now, tt.win), tt.name)
	}
	require.Equal(t, 5*24*time.Hour, DefaultDisableWindow)
}
