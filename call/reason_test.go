package call

import (
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// reasonCase is one expected catalogue answer.
type reasonCase struct {
	value     string
	label     string
	by        string
	connected bool
	outcome   string
}

// seed002 is every row of seed 002's EndedReason table, with its dashboard
// label exactly as the seed prints it.
var seed002 = []reasonCase{
	{"assistant-ended-call", "Agent ended call", ByBot, true, ""},
	{"assistant-ended-call-after-message-spoken", "Message delivered", ByBot, true, ""},
	{"assistant-ended-call-with-hangup-task", "Agent hung up", ByBot, true, ""},
	{"assistant-forwarded-call", "Call transferred", ByBot, true, ""},
	{"assistant-said-end-call-phrase", "End phrase detected", ByBot, true, ""},
	{"customer-busy", "Line busy", ByRejected, false, DispositionBusy},
	{"customer-ended-call", "Customer ended call", ByCustomer, true, ""},
	{"customer-did-not-answer", "No answer", ByNoAnswer, false, DispositionNoAnswer},
	{"phone-call-provider-closed-websocket", "Connection lost", ByError, true, ""},
	{"twilio-failed-to-connect-call", "Twilio connect failed", ByError, false, DispositionFailed},
	{"twilio-reported-customer-misdialed", "Invalid number", ByError, false, DispositionFailed},
	{"call.start.error-vapi-number-outbound-daily-limit", "Daily limit reached", ByError, false, DispositionFailed},
	{"exceeded-max-duration", "Max duration reached", ByTimeout, true, ""},
	{"silence-timed-out", "Silence timeout", ByBot, true, ""},
	{"voicemail", "Voicemail", ByVoicemail, false, DispositionVoicemail},
	{"manually-canceled", "Manually canceled", "", false, ""},
}

// seed003 is every label of seed 003's status message guide (except
// "Unknown status", tested on its own) with the API value it belongs to.
// The system-error labels are pattern labels: the value is a real example
// of the pattern.
var seed003 = []reasonCase{
	// Agent-related outcomes.
	{"assistant-ended-call", "Agent ended call", ByBot, true, ""},
	{"assistant-ended-call-after-message-spoken", "Message delivered", ByBot, true, ""},
	{"assistant-ended-call-with-hangup-task", "Agent hung up", ByBot, true, ""},
	{"assistant-forwarded-call", "Call transferred", ByBot, true, ""},
	{"assistant-said-end-call-phrase", "End phrase detected", ByBot, true, ""},
	// Agent-related technical issues.
	{"assistant-join-timed-out", "Agent join timeout", ByError, false, DispositionFailed},
	{"assistant-request-failed", "Agent request failed", ByError, false, DispositionFailed},
	{"assistant-request-returned-no-assistant", "No agent response", ByError, false, DispositionFailed},
	{"assistant-request-returned-unspeakable-error", "Unspeakable error", ByError, false, DispositionFailed},
	{"assistant-error", "Agent error", ByError, true, ""},
	// Customer-related.
	{"customer-busy", "Line busy", ByRejected, false, DispositionBusy},
	{"customer-ended-call", "Customer ended call", ByCustomer, true, ""},
	{"customer-did-not-answer", "No answer", ByNoAnswer, false, DispositionNoAnswer},
	{"customer-did-not-give-microphone-permission", "No mic access", ByError, false, DispositionFailed},
	// Connection and provider issues.
	{"phone-call-provider-closed-websocket", "Connection lost", ByError, true, ""},
	{"phone-call-provider-bypass-enabled-but-no-call-received", "Bypass enabled, no call", ByError, false, DispositionFailed},
	{"twilio-failed-to-connect-call", "Twilio connect failed", ByError, false, DispositionFailed},
	{"sip-gateway-failed-to-connect-call", "SIP connect failed", ByError, false, DispositionFailed},
	{"twilio-reported-customer-misdialed", "Invalid number", ByError, false, DispositionFailed},
	// Call start errors.
	{"call-start-error-neither-assistant-nor-server-set", "No agent or server", ByError, false, DispositionFailed},
	{"call.start.error-get-org", "Org info error", ByError, false, DispositionFailed},
	{"call.start.error-get-subscription", "Subscription error", ByError, false, DispositionFailed},
	{"call.start.error-get-assistant", "Agent info error", ByError, false, DispositionFailed},
	{"call.start.error-get-phone-number", "Phone number error", ByError, false, DispositionFailed},
	{"call.start.error-get-customer", "Customer info error", ByError, false, DispositionFailed},
	{"call.start.error-get-resources-validation", "Resource validation error", ByError, false, DispositionFailed},
	{"call.start.error-vapi-number-international", "International number error", ByError, false, DispositionFailed},
	{"call.start.error-vapi-number-outbound-daily-limit", "Daily limit reached", ByError, false, DispositionFailed},
	{"call.start.error-get-transport", "Transport error", ByError, false, DispositionFailed},
	// Call forwarding and hooks.
	{"call.forwarding.operator-busy", "Operator busy", "", true, ""},
	{"call.ringing.hook-executed-say", "Say hook executed", ByBot, true, ""},
	{"call.ringing.hook-executed-transfer", "Transfer hook executed", ByBot, true, ""},
	// Other reasons.
	{"database-error", "Database error", ByError, false, ""},
	{"exceeded-max-duration", "Max duration reached", ByTimeout, true, ""},
	{"manually-canceled", "Manually canceled", "", false, ""},
	{"silence-timed-out", "Silence timeout", ByBot, true, ""},
	{"voicemail", "Voicemail", ByVoicemail, false, DispositionVoicemail},
	{"worker-shutdown", "Worker shutdown", ByError, true, ""},
	{"unknown-error", "Unknown error", ByError, false, ""},
	// System errors (caught by error patterns).
	{"pipeline-error-openai-llm-failed", "AI service temporarily unavailable", ByError, true, ""},
	{"pipeline-error-first-message-failed", "Processing error occurred", ByError, true, ""},
	{"call.in-progress.error-assistant-did-not-receive-customer-audio", "Unable to get microphone access", ByError, true, ""},
	{"call.in-progress.error-vapifault-worker-died", "Call interrupted due to system error", ByError, true, ""},
	{"call.ending.error-something-new", "Call ended due to a system error", ByError, false, ""},
	{"pipeline-no-available-llm-model", "AI service unavailable", ByError, true, ""},
}

// seed004 is seed 004's disconnection_reason values.
var seed004 = []reasonCase{
	{"user_hangup", "Customer ended call", ByCustomer, true, ""},
	{"call_transfer", "Call transferred", ByBot, true, ""},
	{"agent_hangup", "Agent hung up", ByBot, true, ""},
}

// retell is a sample of Retell's other disconnection_reason values.
var retell = []reasonCase{
	{"voicemail_reached", "Voicemail", ByVoicemail, false, DispositionVoicemail},
	{"machine_detected", "Machine detected", ByVoicemail, false, DispositionVoicemail},
	{"inactivity", "Silence timeout", ByBot, true, ""},
	{"max_duration_reached", "Max duration reached", ByTimeout, true, ""},
	{"dial_busy", "Line busy", ByRejected, false, DispositionBusy},
	{"dial_failed", "Dial failed", ByError, false, DispositionFailed},
	{"dial_no_answer", "No answer", ByNoAnswer, false, DispositionNoAnswer},
	{"user_declined", "Call declined", ByRejected, false, DispositionNoAnswer},
	{"ivr_reached", "IVR reached", ByBot, false, DispositionNoAnswer},
	{"concurrency_limit_reached", "Concurrency limit reached", ByError, false, DispositionFailed},
	{"no_valid_payment", "No valid payment", ByError, false, DispositionFailed},
	{"scam_detected", "Scam detected", ByError, false, DispositionFailed},
	{"registered_call_timeout", "Web call not joined", ByError, false, DispositionFailed},
	{"error_llm_websocket_open", "LLM connection failed", ByError, true, ""},
	{"error_unknown", "Unknown error", ByError, false, ""},
}

func TestLookupReasonCatalogue(t *testing.T) {
	t.Parallel()
	for name, cases := range map[string][]reasonCase{"seed002": seed002, "seed003": seed003, "seed004": seed004, "retell": retell} {
		for _, c := range cases {
			t.Run(name+"/"+c.value, func(t *testing.T) {
				t.Parallel()
				got := LookupReason(c.value)
				require.True(t, got.Known, "value must be in the catalogue")
				require.Equal(t, c.value, got.Value)
				require.Equal(t, c.label, got.Label)
				require.Equal(t, c.by, got.DisconnectedBy)
				require.Equal(t, c.connected, got.Connected)
				require.Equal(t, c.outcome, got.Outcome)
				require.NotEqual(t, GroupUnknown, got.Group)
			})
		}
	}
}

// TestSeed003LabelsAllCovered guards against a seed label being dropped
// from the tables above and therefore from the test.
func TestSeed003LabelsAllCovered(t *testing.T) {
	t.Parallel()
	labels := []string{
		"Agent ended call", "Message delivered", "Agent hung up", "Call transferred", "End phrase detected",
		"Agent join timeout", "Agent request failed", "No agent response", "Unspeakable error", "Agent error",
		"Line busy", "Customer ended call", "No answer", "No mic access", "Connection lost",
		"Bypass enabled, no call", "Twilio connect failed", "SIP connect failed", "Invalid number",
		"No agent or server", "Org info error", "Subscription error", "Agent info error", "Phone number error",
		"Customer info error", "Resource validation error", "International number error", "Daily limit reached",
		"Transport error", "Operator busy", "Say hook executed", "Transfer hook executed", "Database error",
		"Max duration reached", "Manually canceled", "Silence timeout", "Voicemail", "Worker shutdown",
		"Unknown error", "AI service temporarily unavailable", "Processing error occurred",
		"Unable to get microphone access", "Call interrupted due to system error", "Call ended due to a system error",
		"AI service unavailable",
	}
	covered := map[string]bool{}
	for _, c := range seed003 {
		covered[c.label] = true
	}
	for _, l := range labels {
		require.True(t, covered[l], "seed 003 label %q has no test case", l)
	}
	require.Len(t, covered, len(labels))
}

func TestLookupReasonMissingAndUnknown(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"", "   "} {
		got := LookupReason(v)
		require.False(t, got.Known)
		require.Equal(t, "Unknown status", got.Label)
		require.Equal(t, GroupUnknown, got.Group)
	}
	got := LookupReason("some-new-value")
	require.Equal(t, Reason{Value: "some-new-value", Label: "Unknown reason (some-new-value)", Group: GroupUnknown}, got)
}

func TestLookupReasonFamilies(t *testing.T) {
	t.Parallel()
	cases := []struct {
		value, label, group, outcome string
		connected                    bool
	}{
		{"pipeline-error-azure-openai-llm-failed", "AI service temporarily unavailable", GroupSystemError, "", true},
		{"pipeline-error-eleven-labs-voice-not-found", "AI service temporarily unavailable", GroupSystemError, "", true},
		{"pipeline-error-deepgram-transcriber-failed", "AI service temporarily unavailable", GroupSystemError, "", true},
		{"pipeline-error-function-execution-failed", "Processing error occurred", GroupSystemError, "", true},
		{"call.in-progress.error-providerfault-openai-llm-failed", "AI service temporarily unavailable", GroupSystemError, "", true},
		{"call.in-progress.error-vapifault-worker-not-available", "Call interrupted due to system error", GroupSystemError, "", true},
		{"call.in-progress.error-warm-transfer-max-duration", "Transfer failed", GroupForwarding, "", true},
		{"call.in-progress.error-providerfault-outbound-sip-500-server-error", "SIP connect failed", GroupConnection, DispositionFailed, false},
		{"call.in-progress.error-sip-something-new", "SIP connect failed", GroupConnection, DispositionFailed, false},
		{"call.in-progress.error-xyz-transport-never-connected", "Connection failed", GroupConnection, DispositionFailed, false},
		{"call.start.error-get-something-new", "Call start error", GroupCallStart, DispositionFailed, false},
		{"call-start-error-something-new", "Call start error", GroupCallStart, DispositionFailed, false},
		{"call.ringing.error-new", "Call ended due to a system error", GroupSystemError, DispositionFailed, false},
		{"cartesia-voice-failed", "AI service temporarily unavailable", GroupSystemError, "", true},
		{"assistant-request-returned-something-new", "Agent request failed", GroupAgentIssue, DispositionFailed, false},
		{"error_llm_websocket_new", "Platform error", GroupSystemError, "", false},
		{"twilio-new-thing", "Twilio error", GroupConnection, "", false},
		// Case variants of a family value still match it.
		{"PIPELINE-ERROR-OPENAI-LLM-FAILED", "AI service temporarily unavailable", GroupSystemError, "", true},
	}
	for _, c := range cases {
		t.Run(c.value, func(t *testing.T) {
			t.Parallel()
			got := LookupReason(c.value)
			require.True(t, got.Known)
			require.Equal(t, c.value, got.Value, "the value is kept as given")
			require.Equal(t, c.label, got.Label)
			require.Equal(t, c.group, got.Group)
			require.Equal(t, c.outcome, got.Outcome)
			require.Equal(t, c.connected, got.Connected)
			require.Equal(t, ByError, got.DisconnectedBy)
		})
	}
}

func TestLookupReasonCaseInsensitiveExact(t *testing.T) {
	t.Parallel()
	got := LookupReason("Customer-Did-Not-Answer")
	require.True(t, got.Known)
	require.Equal(t, "No answer", got.Label)
	require.Equal(t, "Customer-Did-Not-Answer", got.Value)
}

// TestCatalogueInvariants checks every exact entry against the rules the
// rest of the package relies on.
func TestCatalogueInvariants(t *testing.T) {
	t.Parallel()
	values := CatalogueValues()
	require.Greater(t, len(values), 100)
	valid := map[string]bool{"": true, ByBot: true, ByCustomer: true, ByVoicemail: true, ByRNR: true,
		ByTimeout: true, ByError: true, ByNoAnswer: true, ByRejected: true}
	outcomes := map[string]bool{"": true, DispositionNoAnswer: true, DispositionBusy: true,
		DispositionFailed: true, DispositionVoicemail: true}
	for _, v := range values {
		r := LookupReason(v)
		require.True(t, r.Known, v)
		require.NotEmpty(t, r.Label, v)
		require.NotEqual(t, GroupUnknown, r.Group, v)
		require.True(t, valid[r.DisconnectedBy], "%s: disconnected_by %q", v, r.DisconnectedBy)
		require.True(t, outcomes[r.Outcome], "%s: outcome %q", v, r.Outcome)
		require.False(t, r.Connected && r.Outcome != "", "%s: a connected reason cannot decide an outcome", v)
		require.Equal(t, strings.ToLower(v), v, "%s: catalogue keys are lower case", v)
		require.NotContains(t, r.Label, "Unknown reason", v)
	}
}

// CatalogueValues returns every exact value in the catalogue, for
// documentation and tests; families are not listed.
func CatalogueValues() []string {
	values := make([]string, 0, len(catalogue))
	for v := range catalogue {
		values = append(values, v)
	}
	slices.Sort(values)
	return values
}
