package recording

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"
)

func putInput(key, body string) *s3.PutObjectInput {
	return &s3.PutObjectInput{Bucket: aws.String(testBucket), Key: aws.String(key), Body: strings.NewReader(body)}
}

// fixedClock returns a Config mutation that signs at t.
func fixedClock(t time.Time) func(*Config) {
	return func(c *Config) { c.Now = func() time.Time { return t } }
}

// urlTimes reads the signing time and lifetime out of a presigned URL.
func urlTimes(t *testing.T, raw string) (signed time.Time, expires time.Duration) {
	t.Helper()
	u, err := url.Parse(raw)
	require.NoError(t, err)
	q := u.Query()
	signed, err = time.Parse("20060102T150405Z", q.Get("X-Amz-Date"))
	require.NoError(t, err, "X-Amz-Date")
	secs, err := strconv.Atoi(q.Get("X-Amz-Expires"))
	require.NoError(t, err, "X-Amz-Expires")
	return signed, time.Duration(secs) * time.Second
}

func TestSignFetchesObject(t *testing.T) {
	t.Parallel()
	// Signing a little in the past proves the clock hook is what decides
	// X-Amz-Date; the sub-second part proves it is truncated like SigV4's.
	signAt := time.Now().Add(-10 * time.Minute).Truncate(time.Second).Add(700 * time.Millisecond)
	b := setup(t, fixedClock(signAt))

	tests := []struct{ name, key string }{
		{"plain", "calls/2025/06/01/call-123.wav"},
		{"space and plus", "calls/a b+c.mp3"},
		{"unicode and reserved", "calls/ünïcode/ä%20&=?#.wav"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			body := "RIFF fake audio for " + tt.key
			b.putSDK(t, tt.key, body)

			su, err := b.store.Sign(t.Context(), tt.key)
			require.NoError(t, err)
			require.Equal(t, tt.key, su.Key)
			require.True(t, strings.HasPrefix(su.URL, b.s3.URL+"/"+testBucket+"/"), "path-style URL on the endpoint: %s", su.URL)

			status, got := get(t, su.URL)
			require.Equal(t, 200, status, got)
			require.Equal(t, body, got)

			// ExpiresAt is exactly what the signature says.
			signed, ttl := urlTimes(t, su.URL)
			require.Equal(t, signAt.Truncate(time.Second).UTC(), signed)
			require.Equal(t, DefaultURLTTL, ttl)
			require.True(t, su.ExpiresAt.Equal(signed.Add(ttl)), "ExpiresAt %s, URL says %s", su.ExpiresAt, signed.Add(ttl))
		})
	}
}

func TestSignTamperedURLRefused(t *testing.T) {
	t.Parallel()
	b := setup(t, fixedClock(time.Now().Add(-10*time.Minute)))
	const key = "calls/victim.wav"
	b.putSDK(t, key, "victim audio")
	b.putSDK(t, "calls/other.wav", "someone else's audio")

	tests := []struct {
		name   string
		tamper func(u *url.URL, q url.Values)
	}{
		{"signature", func(_ *url.URL, q url.Values) {
			sig := []byte(q.Get("X-Amz-Signature"))
			sig[len(sig)-1] = "01"[boolInt(sig[len(sig)-1] == '0')]
			q.Set("X-Amz-Signature", string(sig))
		}},
		{"key", func(u *url.URL, _ url.Values) {
			u.Path = strings.Replace(u.Path, "victim", "other", 1)
			u.RawPath = ""
		}},
		{"expiry extended", func(_ *url.URL, q url.Values) { q.Set("X-Amz-Expires", "7200") }},
		{"signing time moved", func(_ *url.URL, q url.Values) {
			at, err := time.Parse("20060102T150405Z", q.Get("X-Amz-Date"))
			require.NoError(t, err)
			q.Set("X-Amz-Date", at.Add(5*time.Minute).Format("20060102T150405Z"))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			su, err := b.store.Sign(t.Context(), key)
			require.NoError(t, err)
			// Control: the untouched URL works, so a refusal below is
			// caused by the tampering.
			status, body := get(t, su.URL)
			require.Equal(t, 200, status, body)

			u, err := url.Parse(su.URL)
			require.NoError(t, err)
			q := u.Query()
			tt.tamper(u, q)
			u.RawQuery = q.Encode()
			require.NotEqual(t, su.URL, u.String(), "tampering changed nothing")

			status, body = get(t, u.String())
			require.Equal(t, 403, status, body)
			require.Contains(t, body, "<Code>SignatureDoesNotMatch</Code>")
		})
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestSignExpiredURLRefused(t *testing.T) {
	t.Parallel()
	// The signer's clock is moved back instead of sleeping: the fake S3
	// checks expiry against the real time.
	tests := []struct {
		name     string
		signedAt time.Duration // before now
		ttl      time.Duration
		want     int
	}{
		{"fresh", 0, time.Hour, 200},
		{"near the end", 50 * time.Minute, time.Hour, 200},
		{"expired an hour ago", 2 * time.Hour, time.Hour, 403},
		{"expired a minute ago", 3 * time.Minute, 2 * time.Minute, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			now := time.Now()
			b := setup(t, fixedClock(now.Add(-tt.signedAt)), func(c *Config) { c.URLTTL = tt.ttl })
			b.putSDK(t, "calls/old.wav", "old audio")

			su, err := b.store.Sign(t.Context(), "calls/old.wav")
			require.NoError(t, err)
			require.Equal(t, tt.want == 200, su.ExpiresAt.After(now), "ExpiresAt %s vs now %s", su.ExpiresAt, now)

			status, body := get(t, su.URL)
			require.Equal(t, tt.want, status, body)
			if tt.want == 403 {
				require.Contains(t, body, "<Code>AccessDenied</Code>")
				require.Contains(t, body, "expired")
			} else {
				require.Equal(t, "old audio", body)
			}
		})
	}
}

func TestClampTTL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      time.Duration
		want    time.Duration
		clamped bool
	}{
		{30 * 24 * time.Hour, 7 * 24 * time.Hour, true},
		{7*24*time.Hour + time.Second, 7 * 24 * time.Hour, true},
		{7 * 24 * time.Hour, 7 * 24 * time.Hour, false},
		{time.Hour, time.Hour, false},
		{1500 * time.Millisecond, time.Second, false},
		{time.Second, time.Second, false},
		{999 * time.Millisecond, time.Second, true},
		{0, time.Second, true},
		{-time.Hour, time.Second, true},
	}
	for _, tt := range tests {
		got, clamped := ClampTTL(tt.in)
		require.Equal(t, tt.want, got, "ClampTTL(%s)", tt.in)
		require.Equal(t, tt.clamped, clamped, "ClampTTL(%s) clamped", tt.in)
	}
}

func TestSignClampsTTLToSevenDays(t *testing.T) {
	t.Parallel()
	signAt := time.Now().Add(-time.Minute).Truncate(time.Second)
	b := setup(t, fixedClock(signAt), func(c *Config) { c.URLTTL = 30 * 24 * time.Hour })
	require.Equal(t, 7*24*time.Hour, b.store.URLTTL())
	b.putSDK(t, "calls/long.wav", "long-lived audio")

	su, err := b.store.Sign(t.Context(), "calls/long.wav")
	require.NoError(t, err)
	u, err := url.Parse(su.URL)
	require.NoError(t, err)
	require.Equal(t, "604800", u.Query().Get("X-Amz-Expires"))
	require.Equal(t, signAt.Add(7*24*time.Hour).UTC(), su.ExpiresAt)

	// S3 refuses X-Amz-Expires above 7 days; the clamped URL must work.
	status, body := get(t, su.URL)
	require.Equal(t, 200, status, body)
	require.Equal(t, "long-lived audio", body)
}

func TestSignRejectsEmptyKey(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, err := b.store.Sign(t.Context(), "")
	require.ErrorContains(t, err, "empty key")
}

func TestSignedURLNeverPrinted(t *testing.T) {
	t.Parallel()
	b := setup(t)
	su, err := b.store.Sign(t.Context(), "calls/secret.wav")
	require.NoError(t, err)
	sig := mustQuery(t, su.URL, "X-Amz-Signature")
	require.NotEmpty(t, sig)

	var jsonLog, textLog bytes.Buffer
	slog.New(slog.NewJSONHandler(&jsonLog, nil)).Info("signed", "recording", su)
	slog.New(slog.NewTextHandler(&textLog, nil)).Info("signed", "recording", su)
	outputs := map[string]string{
		"%v":        fmt.Sprintf("%v", su),
		"%+v":       fmt.Sprintf("%+v", su),
		"%#v":       fmt.Sprintf("%#v", su),
		"%s":        fmt.Sprintf("%s", su),
		"%q":        fmt.Sprintf("%q", su),
		"pointer":   fmt.Sprintf("%v", &su),
		"in struct": fmt.Sprintf("%+v", struct{ R SignedURL }{su}),
		"errorf":    fmt.Errorf("serving %v: %w", su, fmt.Errorf("boom")).Error(),
		"slog json": jsonLog.String(),
		"slog text": textLog.String(),
	}
	for name, out := range outputs {
		require.NotContains(t, out, sig, name)
		require.NotContains(t, out, "X-Amz-", name)
		require.Contains(t, out, "calls/secret.wav", name)
		require.Contains(t, out, redacted, name)
	}

	// The API response is the one place the URL belongs.
	raw, err := json.Marshal(su)
	require.NoError(t, err)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(raw, &doc))
	require.Equal(t, su.URL, doc["url"])
	require.Equal(t, "calls/secret.wav", doc["key"])
	require.Equal(t, su.ExpiresAt.Format(time.RFC3339Nano), doc["expires_at"])
}

func mustQuery(t *testing.T, raw, param string) string {
	t.Helper()
	u, err := url.Parse(raw)
	require.NoError(t, err)
	return u.Query().Get(param)
}

func TestExists(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.putSDK(t, "calls/here.wav", "x")

	ok, err := b.store.Exists(t.Context(), "calls/here.wav")
	require.NoError(t, err)
	require.True(t, ok)

	ok, err = b.store.Exists(t.Context(), "calls/nowhere.wav")
	require.NoError(t, err)
	require.False(t, ok)

	// A real failure is an error, not "missing".
	const badSecret = "not-the-secret-9f2c"
	other := setup(t, func(c *Config) { c.SecretAccessKey = badSecret })
	other.s3.Put(t, "calls/here.wav", "x")
	_, err = other.store.Exists(t.Context(), "calls/here.wav")
	require.Error(t, err)
	require.ErrorContains(t, err, "calls/here.wav")
	require.NotContains(t, err.Error(), badSecret)
}
