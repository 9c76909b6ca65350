package chaos

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestLogAuditCatchesLeaks makes sure the log audit would see each kind of
// leak, in JSON and text log lines: a passing audit means something.
func TestLogAuditCatchesLeaks(t *testing.T) {
	t.Parallel()
	b := &testBundle{secrets: newSecrets()}
	c := b.newCalls(2, 0)
	clean := `{"time":"2026-11-20T10:00:00Z","level":"INFO","msg":"delivery attempt","call":"01a1fe63-d495-7683-8488-eb87b929d20f","status_code":200,"latency":5550130}` + "\n" +
		`time=2026-11-20T10:00:00Z level=WARN msg="run failed" run=12 error="chat completion failed: status 429"` + "\n"
	require.Empty(t, b.leaks([]byte(clean)), "a clean log passes")

	for what, leak := range map[string]string{
		"API key":           b.secrets.APIKey,
		"API token":         b.secrets.APIToken,
		"link secret":       b.secrets.LinkSecret,
		"AWS secret":        b.secrets.AWSSecret,
		"header value":      b.secrets.HeaderValue,
		"webhook secret":    b.secrets.Webhook["hook-a"],
		"signed URL":        "https://s3.example.com/recordings/x.wav?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=abc",
		"E.164 number":      c[0].Phone,
		"formatted number":  c[1].Phone,
		"digits only":       strings.TrimPrefix(c[0].Phone, "+"),
		"customer name":     "Zelda Quimby 1",
		"user turn":         userLine(c[0].Index),
		"agent turn":        agentLine,
		"closing turn":      closingLine,
		"quoted transcript": `user: My order number is N-00001`,
	} {
		for _, line := range []string{
			`{"level":"WARN","msg":"x","error":"` + strings.ReplaceAll(leak, `"`, `\"`) + `"}`,
			`level=WARN msg=x error="` + leak + `"`,
		} {
			require.NotEmpty(t, b.leaks([]byte(clean+line+"\n")), "the audit misses a %s in %s", what, line)
		}
	}
}
