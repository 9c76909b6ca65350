package call

import (
	"strings"
)

// Who ended the call: the disconnected_by values of the call-detail page
// (seed 001).
const (
	// ByBot: the bot ended the call (natural close, closing line, dead air).
	ByBot = "bot"
	// ByCustomer: the customer hung up.
	ByCustomer = "customer"
	// ByVoicemail: the call reached a voicemail or answering machine.
	ByVoicemail = "voicemail"
	// ByRNR: the line connected but the customer stayed silent the whole
	// call (Ring No Response).
	ByRNR = "RNR"
	// ByTimeout: the call ran past its maximum allowed duration.
	ByTimeout = "timeout"
	// ByError: the call failed to start or hit an unexpected problem.
	ByError = "error"
	// ByNoAnswer: the number rang out and was never answered.
	ByNoAnswer = "no_answer"
	// ByRejected: the other end refused the call.
	ByRejected = "rejected"
)

// The auto dispositions (contract, "Auto disposition"). The first four are
// also the outcome hints of the reason catalogue.
const (
	DispositionNoAnswer   = "no_answer"
	DispositionBusy       = "busy"
	DispositionFailed     = "failed"
	DispositionVoicemail  = "voicemail"
	DispositionNoResponse = "no_response"
	DispositionTooShort   = "too_short"
)

// Reason groups: the sections of the dashboard's status message guide
// (seed 003), plus GroupUnknown for values outside the catalogue.
const (
	GroupAgentOutcome = "agent_outcome" // the agent ended or transferred the call
	GroupAgentIssue   = "agent_issue"   // the agent failed to join, load or answer
	GroupCustomer     = "customer"      // busy, no answer, hung up, no microphone
	GroupConnection   = "connection"    // telephony and provider connection problems
	GroupCallStart    = "call_start"    // the call could not be set up
	GroupForwarding   = "forwarding"    // forwarding, transfers and call hooks
	GroupOther        = "other"         // timeouts, voicemail, cancellation, shutdown
	GroupSystemError  = "system_error"  // pipeline and platform errors
	GroupUnknown      = "unknown"       // not in the catalogue
)

// LabelMissing is the dashboard label of a call without an ended reason
// (seed 003's "Unknown status").
const LabelMissing = "Unknown status"

// Reason is what the catalogue knows about one ended_reason value.
type Reason struct {
	// Value is the ended_reason as looked up.
	Value string
	// Label is the dashboard label: the seeds' label where they give one,
	// "Unknown reason (<value>)" for a value outside the catalogue and
	// "Unknown status" for a missing value.
	Label string
	// Group is one of the Group* constants.
	Group string
	// DisconnectedBy is who ended the call by this reason (a By* constant),
	// or "" when the reason does not say.
	DisconnectedBy string
	// Connected reports that the reason implies the customer was reached and
	// a conversation was possible. False with an empty Outcome means the
	// reason does not say (an unknown value, a cancellation or a platform
	// error at an unknown moment): the transcript has to tell.
	Connected bool
	// Outcome is the auto disposition the reason decides on its own
	// (no_answer, busy, failed or voicemail), or "".
	Outcome string
	// Known is false for a value outside the catalogue and for "".
	Known bool
}

// entry is one catalogue row; LookupReason turns it into a Reason.
type entry struct {
	label     string
	group     string
	by        string
	connected bool
	outcome   string
}

// Shorthands keeping the catalogue rows on one line each.
const (
	conn   = true  // the customer was reached
	noConn = false // not reached, or the reason does not say (see Reason.Connected)
)

// catalogue holds every exact ended_reason value postcall knows: all of
// seeds 002 and 003 (003's labels mapped onto the Vapi-style API values the
// platform uses, 002 giving the pattern), Vapi's documented endedReason
// values, seed 004's disconnection_reason values and Retell's
// disconnection_reason values. Labels of values the seeds do not list are
// written in the seeds' style. It is built once and never modified.
//
// Decisions, where the sources leave room:
//   - busy is disconnected_by "rejected": the far end refused the call with
//     a final answer, which is what distinguishes it from ringing out.
//   - a declined call (Retell user_declined) and an IVR answer are outcome
//     no_answer: the customer chose not to take the call or was never
//     reached by a person; nothing failed (seed 003 documents "No answer"
//     for IVR answers too).
//   - silence-timed-out and Retell inactivity are disconnected_by "bot": the
//     bot ended a call that went quiet; RNR is reserved for the platform
//     saying the customer was silent the whole call.
//   - errors during a call are connected with no outcome: whether the
//     customer spoke decides (no_response or analysis).
var catalogue = map[string]entry{
	// Agent-related outcomes (seeds 002, 003).
	"assistant-ended-call":                      {"Agent ended call", GroupAgentOutcome, ByBot, conn, ""},
	"assistant-ended-call-after-message-spoken": {"Message delivered", GroupAgentOutcome, ByBot, conn, ""},
	"assistant-ended-call-with-hangup-task":     {"Agent hung up", GroupAgentOutcome, ByBot, conn, ""},
	"assistant-forwarded-call":                  {"Call transferred", GroupAgentOutcome, ByBot, conn, ""},
	"assistant-said-end-call-phrase":            {"End phrase detected", GroupAgentOutcome, ByBot, conn, ""},

	// Agent-related technical issues (seed 003; Vapi).
	"assistant-join-timed-out":                           {"Agent join timeout", GroupAgentIssue, ByError, noConn, DispositionFailed},
	"assistant-request-failed":                           {"Agent request failed", GroupAgentIssue, ByError, noConn, DispositionFailed},
	"assistant-request-returned-no-assistant":            {"No agent response", GroupAgentIssue, ByError, noConn, DispositionFailed},
	"assistant-request-returned-unspeakable-error":       {"Unspeakable error", GroupAgentIssue, ByError, noConn, DispositionFailed},
	"assistant-request-returned-error":                   {"Agent request returned an error", GroupAgentIssue, ByError, noConn, DispositionFailed},
	"assistant-request-returned-invalid-assistant":       {"Invalid agent returned", GroupAgentIssue, ByError, noConn, DispositionFailed},
	"assistant-request-returned-forwarding-phone-number": {"Forwarded by agent request", GroupForwarding, ByBot, conn, ""},
	"assistant-error":                                    {"Agent error", GroupAgentIssue, ByError, conn, ""},
	"assistant-not-found":                                {"Agent not found", GroupAgentIssue, ByError, noConn, DispositionFailed},
	"assistant-not-valid":                                {"Invalid agent", GroupAgentIssue, ByError, noConn, DispositionFailed},
	"assistant-not-invalid":                              {"Invalid agent", GroupAgentIssue, ByError, noConn, DispositionFailed}, // spelling in older Vapi SDKs
	"assistant-not-provided":                             {"No agent provided", GroupAgentIssue, ByError, noConn, DispositionFailed},

	// Customer-related (seeds 002, 003; Vapi).
	"customer-busy":                                   {"Line busy", GroupCustomer, ByRejected, noConn, DispositionBusy},
	"customer-ended-call":                             {"Customer ended call", GroupCustomer, ByCustomer, conn, ""},
	"customer-did-not-answer":                         {"No answer", GroupCustomer, ByNoAnswer, noConn, DispositionNoAnswer},
	"customer-did-not-give-microphone-permission":     {"No mic access", GroupCustomer, ByError, noConn, DispositionFailed},
	"assistant-did-not-receive-customer-audio":        {"No mic access", GroupCustomer, ByError, conn, ""},
	"customer-ended-call-before-warm-transfer":        {"Customer ended call", GroupCustomer, ByCustomer, conn, ""},
	"customer-ended-call-after-warm-transfer-attempt": {"Customer ended call", GroupCustomer, ByCustomer, conn, ""},
	"customer-ended-call-during-transfer":             {"Customer ended call", GroupCustomer, ByCustomer, conn, ""},

	// Connection and provider issues (seeds 002, 003; Vapi).
	"phone-call-provider-closed-websocket":                                                {"Connection lost", GroupConnection, ByError, conn, ""},
	"phone-call-provider-bypass-enabled-but-no-call-received":                             {"Bypass enabled, no call", GroupConnection, ByError, noConn, DispositionFailed},
	"twilio-failed-to-connect-call":                                                       {"Twilio connect failed", GroupConnection, ByError, noConn, DispositionFailed},
	"twilio-reported-customer-misdialed":                                                  {"Invalid number", GroupConnection, ByError, noConn, DispositionFailed},
	"sip-gateway-failed-to-connect-call":                                                  {"SIP connect failed", GroupConnection, ByError, noConn, DispositionFailed},
	"call.in-progress.error-sip-inbound-call-failed-to-connect":                           {"SIP connect failed", GroupConnection, ByError, noConn, DispositionFailed},
	"call.in-progress.error-sip-outbound-call-failed-to-connect":                          {"SIP connect failed", GroupConnection, ByError, noConn, DispositionFailed},
	"call.ringing.error-sip-inbound-call-failed-to-connect":                               {"SIP connect failed", GroupConnection, ByError, noConn, DispositionFailed},
	"call.in-progress.error-providerfault-outbound-sip-403-forbidden":                     {"SIP call forbidden", GroupConnection, ByError, noConn, DispositionFailed},
	"call.in-progress.error-providerfault-outbound-sip-407-proxy-authentication-required": {"SIP authentication required", GroupConnection, ByError, noConn, DispositionFailed},
	"call.in-progress.error-providerfault-outbound-sip-408-request-timeout":               {"No answer", GroupConnection, ByNoAnswer, noConn, DispositionNoAnswer},
	"call.in-progress.error-providerfault-outbound-sip-480-temporarily-unavailable":       {"Temporarily unavailable", GroupConnection, ByNoAnswer, noConn, DispositionNoAnswer},
	"call.in-progress.error-providerfault-outbound-sip-503-service-unavailable":           {"SIP service unavailable", GroupConnection, ByError, noConn, DispositionFailed},
	"call.ringing.sip-inbound-caller-hungup-before-call-connect":                          {"Caller hung up before connect", GroupConnection, ByCustomer, noConn, DispositionNoAnswer},
	"call.in-progress.error-vapifault-transport-never-connected":                          {"Connection failed", GroupConnection, ByError, noConn, DispositionFailed},
	"call.in-progress.error-providerfault-transport-never-connected":                      {"Connection failed", GroupConnection, ByError, noConn, DispositionFailed},
	"call.in-progress.error-vapifault-transport-connected-but-call-not-active":            {"Connection lost", GroupConnection, ByError, conn, ""},
	"call.in-progress.error-vapifault-call-started-but-connection-to-transport-missing":   {"Connection lost", GroupConnection, ByError, conn, ""},
	"call.in-progress.twilio-completed-call":                                              {"Call completed (Twilio)", GroupConnection, "", conn, ""},
	"call.in-progress.sip-completed-call":                                                 {"Call completed (SIP)", GroupConnection, "", conn, ""},
	"vonage-completed":                                                                    {"Call completed (Vonage)", GroupConnection, "", conn, ""},
	"vonage-disconnected":                                                                 {"Vonage disconnected", GroupConnection, ByError, conn, ""},
	"vonage-failed-to-connect-call":                                                       {"Vonage connect failed", GroupConnection, ByError, noConn, DispositionFailed},
	"vonage-rejected":                                                                     {"Vonage rejected call", GroupConnection, ByError, noConn, DispositionFailed},

	// Call start errors (seeds 002, 003; Vapi).
	"call-start-error-neither-assistant-nor-server-set":                   {"No agent or server", GroupCallStart, ByError, noConn, DispositionFailed},
	"call.start.error-get-org":                                            {"Org info error", GroupCallStart, ByError, noConn, DispositionFailed},
	"call.start.error-get-subscription":                                   {"Subscription error", GroupCallStart, ByError, noConn, DispositionFailed},
	"call.start.error-get-assistant":                                      {"Agent info error", GroupCallStart, ByError, noConn, DispositionFailed},
	"call.start.error-get-phone-number":                                   {"Phone number error", GroupCallStart, ByError, noConn, DispositionFailed},
	"call.start.error-get-customer":                                       {"Customer info error", GroupCallStart, ByError, noConn, DispositionFailed},
	"call.start.error-get-resources-validation":                           {"Resource validation error", GroupCallStart, ByError, noConn, DispositionFailed},
	"call.start.error-vapi-number-international":                          {"International number error", GroupCallStart, ByError, noConn, DispositionFailed},
	"call.start.error-vapi-number-outbound-daily-limit":                   {"Daily limit reached", GroupCallStart, ByError, noConn, DispositionFailed},
	"call.start.error-get-transport":                                      {"Transport error", GroupCallStart, ByError, noConn, DispositionFailed},
	"call.start.error-vapifault-database-error":                           {"Database error", GroupCallStart, ByError, noConn, DispositionFailed},
	"call.start.error-subscription-frozen":                                {"Subscription frozen", GroupCallStart, ByError, noConn, DispositionFailed},
	"call.start.error-subscription-insufficient-credits":                  {"Insufficient credits", GroupCallStart, ByError, noConn, DispositionFailed},
	"call.start.error-subscription-wallet-does-not-exist":                 {"Billing wallet missing", GroupCallStart, ByError, noConn, DispositionFailed},
	"call.start.error-subscription-upgrade-failed":                        {"Subscription upgrade failed", GroupCallStart, ByError, noConn, DispositionFailed},
	"call.start.error-subscription-concurrency-limit-reached":             {"Concurrency limit reached", GroupCallStart, ByError, noConn, DispositionFailed},
	"call.start.error-fraud-check-failed":                                 {"Fraud check failed", GroupCallStart, ByError, noConn, DispositionFailed},
	"call.start.error-enterprise-feature-not-available-recording-consent": {"Recording consent unavailable", GroupCallStart, ByError, noConn, DispositionFailed},
	"no-server-available":                                                 {"No server available", GroupCallStart, ByError, noConn, DispositionFailed},
	"license-check-failed":                                                {"License check failed", GroupCallStart, ByError, noConn, DispositionFailed},
	"scheduled-call-deleted":                                              {"Scheduled call deleted", GroupCallStart, "", noConn, DispositionFailed},

	// Call forwarding and hooks (seed 003; Vapi). A hook acts on the caller's
	// live line, so the call counts as connected.
	"call.forwarding.operator-busy":          {"Operator busy", GroupForwarding, "", conn, ""},
	"call.ringing.hook-executed-say":         {"Say hook executed", GroupForwarding, ByBot, conn, ""},
	"call.ringing.hook-executed-transfer":    {"Transfer hook executed", GroupForwarding, ByBot, conn, ""},
	"call.ending.hook-executed-say":          {"Say hook executed", GroupForwarding, ByBot, conn, ""},
	"call.ending.hook-executed-transfer":     {"Transfer hook executed", GroupForwarding, ByBot, conn, ""},
	"call.in-progress.error-transfer-failed": {"Transfer failed", GroupForwarding, ByError, conn, ""},

	// Other reasons (seeds 002, 003; Vapi). A cancellation, a deleted call
	// and a database or unknown error can happen before or during the call:
	// they say nothing about whether the customer was reached.
	"database-error":        {"Database error", GroupOther, ByError, noConn, ""},
	"db-error":              {"Database error", GroupOther, ByError, noConn, ""},
	"exceeded-max-duration": {"Max duration reached", GroupOther, ByTimeout, conn, ""},
	"manually-canceled":     {"Manually canceled", GroupOther, "", noConn, ""},
	"call-deleted":          {"Call deleted", GroupOther, "", noConn, ""},
	"silence-timed-out":     {"Silence timeout", GroupOther, ByBot, conn, ""},
	"voicemail":             {"Voicemail", GroupOther, ByVoicemail, noConn, DispositionVoicemail},
	"worker-shutdown":       {"Worker shutdown", GroupOther, ByError, conn, ""},
	"server-shutdown":       {"Server shutdown", GroupOther, ByError, conn, ""},
	"unknown-error":         {"Unknown error", GroupOther, ByError, noConn, ""},

	// System errors (seed 003's pattern labels; exact Vapi values).
	"call.in-progress.error-assistant-did-not-receive-customer-audio": {"Unable to get microphone access", GroupSystemError, ByError, conn, ""},
	"pipeline-no-available-llm-model":                                 {"AI service unavailable", GroupSystemError, ByError, conn, ""},
	"call.in-progress.error-pipeline-no-available-llm-model":          {"AI service unavailable", GroupSystemError, ByError, conn, ""},

	// Seed 004's disconnection_reason values, which are Retell's.
	"user_hangup":   {"Customer ended call", GroupCustomer, ByCustomer, conn, ""},
	"agent_hangup":  {"Agent hung up", GroupAgentOutcome, ByBot, conn, ""},
	"call_transfer": {"Call transferred", GroupAgentOutcome, ByBot, conn, ""},

	// Retell's other disconnection_reason values.
	"transfer_bridged":                     {"Call transferred", GroupAgentOutcome, ByBot, conn, ""},
	"transfer_cancelled":                   {"Transfer canceled", GroupForwarding, "", conn, ""},
	"voicemail_reached":                    {"Voicemail", GroupOther, ByVoicemail, noConn, DispositionVoicemail},
	"machine_detected":                     {"Machine detected", GroupOther, ByVoicemail, noConn, DispositionVoicemail},
	"ivr_reached":                          {"IVR reached", GroupCustomer, ByBot, noConn, DispositionNoAnswer},
	"inactivity":                           {"Silence timeout", GroupOther, ByBot, conn, ""},
	"max_duration_reached":                 {"Max duration reached", GroupOther, ByTimeout, conn, ""},
	"dial_busy":                            {"Line busy", GroupCustomer, ByRejected, noConn, DispositionBusy},
	"dial_no_answer":                       {"No answer", GroupCustomer, ByNoAnswer, noConn, DispositionNoAnswer},
	"user_declined":                        {"Call declined", GroupCustomer, ByRejected, noConn, DispositionNoAnswer},
	"dial_failed":                          {"Dial failed", GroupConnection, ByError, noConn, DispositionFailed},
	"invalid_destination":                  {"Invalid number", GroupConnection, ByError, noConn, DispositionFailed},
	"telephony_provider_permission_denied": {"Telephony permission denied", GroupConnection, ByError, noConn, DispositionFailed},
	"telephony_provider_unavailable":       {"Telephony provider unavailable", GroupConnection, ByError, noConn, DispositionFailed},
	"sip_routing_error":                    {"SIP routing error", GroupConnection, ByError, noConn, DispositionFailed},
	"marked_as_spam":                       {"Marked as spam", GroupConnection, ByRejected, noConn, DispositionFailed},
	"concurrency_limit_reached":            {"Concurrency limit reached", GroupCallStart, ByError, noConn, DispositionFailed},
	"no_valid_payment":                     {"No valid payment", GroupCallStart, ByError, noConn, DispositionFailed},
	"scam_detected":                        {"Scam detected", GroupCallStart, ByError, noConn, DispositionFailed},
	"error_inbound_webhook":                {"Inbound webhook error", GroupCallStart, ByError, noConn, DispositionFailed},
	"registered_call_timeout":              {"Web call not joined", GroupCallStart, ByError, noConn, DispositionFailed},
	"error_user_not_joined":                {"Web call not joined", GroupCallStart, ByError, noConn, DispositionFailed},
	"error_llm_websocket_open":             {"LLM connection failed", GroupSystemError, ByError, conn, ""},
	"error_llm_websocket_lost_connection":  {"LLM connection lost", GroupSystemError, ByError, conn, ""},
	"error_llm_websocket_runtime":          {"LLM runtime error", GroupSystemError, ByError, conn, ""},
	"error_llm_websocket_corrupt_payload":  {"LLM payload error", GroupSystemError, ByError, conn, ""},
	"error_frontend_corrupted_payload":     {"Web client payload error", GroupSystemError, ByError, conn, ""},
	"error_no_audio_received":              {"No audio received", GroupSystemError, ByError, conn, ""},
	"error_asr":                            {"Transcription error", GroupSystemError, ByError, conn, ""},
	"error_twilio":                         {"Twilio error", GroupConnection, ByError, noConn, ""},
	"error_retell":                         {"Platform error", GroupSystemError, ByError, noConn, ""},
	"error_unknown":                        {"Unknown error", GroupSystemError, ByError, noConn, ""},
}

// family is a pattern for values the exact catalogue does not list: Vapi
// generates many values per provider and status code
// (pipeline-error-openai-llm-failed, call.in-progress.error-vapifault-...),
// and new ones appear with every provider it adds.
type family struct {
	match func(v string) bool
	entry
}

func hasPrefix(prefixes ...string) func(string) bool {
	return func(v string) bool {
		for _, p := range prefixes {
			if strings.HasPrefix(v, p) {
				return true
			}
		}
		return false
	}
}

// aiService reports whether a pipeline error names a model, voice or
// transcriber provider failure: seed 003's "AI service temporarily
// unavailable" rather than a generic processing error.
func aiService(v string) bool {
	for _, s := range []string{"llm", "voice", "transcriber", "model", "openai", "azure", "anthropic", "deepgram", "elevenlabs", "11labs", "cartesia", "together", "groq"} {
		if strings.Contains(v, s) {
			return true
		}
	}
	return false
}

// families are tried in order on a value not in the catalogue; the first
// match wins, so specific patterns come before general ones.
var families = []family{
	{hasPrefix("call.in-progress.error-providerfault-outbound-sip-", "call.in-progress.error-sip-", "call.ringing.error-sip-"),
		entry{"SIP connect failed", GroupConnection, ByError, noConn, DispositionFailed}},
	{func(v string) bool {
		return strings.HasPrefix(v, "call.in-progress.error-") && strings.Contains(v, "transfer")
	}, entry{"Transfer failed", GroupForwarding, ByError, conn, ""}},
	{func(v string) bool {
		return strings.HasPrefix(v, "call.in-progress.error-") && strings.Contains(v, "never-connected")
	}, entry{"Connection failed", GroupConnection, ByError, noConn, DispositionFailed}},
	{func(v string) bool {
		return strings.HasPrefix(v, "call.in-progress.error-") && aiService(v)
	}, entry{"AI service temporarily unavailable", GroupSystemError, ByError, conn, ""}},
	{hasPrefix("call.in-progress.error-"),
		entry{"Call interrupted due to system error", GroupSystemError, ByError, conn, ""}},
	{hasPrefix("call.start.error-", "call-start-error-"),
		entry{"Call start error", GroupCallStart, ByError, noConn, DispositionFailed}},
	{hasPrefix("call.ringing.error-"),
		entry{"Call ended due to a system error", GroupSystemError, ByError, noConn, DispositionFailed}},
	{func(v string) bool { return strings.HasPrefix(v, "call.") && strings.Contains(v, ".error-") },
		entry{"Call ended due to a system error", GroupSystemError, ByError, noConn, ""}},
	{func(v string) bool { return strings.HasPrefix(v, "pipeline-error-") && aiService(v) },
		entry{"AI service temporarily unavailable", GroupSystemError, ByError, conn, ""}},
	{hasPrefix("pipeline-error-"),
		entry{"Processing error occurred", GroupSystemError, ByError, conn, ""}},
	{func(v string) bool {
		return strings.HasSuffix(v, "-llm-failed") || strings.HasSuffix(v, "-voice-failed") ||
			strings.HasSuffix(v, "-transcriber-failed") || v == "llm-failed"
	}, entry{"AI service temporarily unavailable", GroupSystemError, ByError, conn, ""}},
	{hasPrefix("assistant-request-"),
		entry{"Agent request failed", GroupAgentIssue, ByError, noConn, DispositionFailed}},
	{hasPrefix("twilio-"), entry{"Twilio error", GroupConnection, ByError, noConn, ""}},
	{hasPrefix("vonage-"), entry{"Vonage error", GroupConnection, ByError, noConn, ""}},
	{hasPrefix("error_"), entry{"Platform error", GroupSystemError, ByError, noConn, ""}},
}

// LookupReason returns what the catalogue knows about an ended_reason value:
// an exact entry, else a known family's entry (matched case-insensitively),
// else Known false with the honest label "Unknown reason (<value>)" and no
// semantics. An empty value is "Unknown status".
func LookupReason(value string) Reason {
	v := strings.TrimSpace(value)
	if v == "" {
		return Reason{Value: value, Label: LabelMissing, Group: GroupUnknown}
	}
	e, ok := catalogue[v]
	if !ok {
		e, ok = catalogue[strings.ToLower(v)]
	}
	if !ok {
		lower := strings.ToLower(v)
		for _, f := range families {
			if f.match(lower) {
				e, ok = f.entry, true
				break
			}
		}
	}
	if !ok {
		return Reason{Value: value, Label: "Unknown reason (" + v + ")", Group: GroupUnknown}
	}
	return Reason{
		Value: value, Label: e.label, Group: e.group, DisconnectedBy: e.by,
		Connected: e.connected, Outcome: e.outcome, Known: true,
	}
}
