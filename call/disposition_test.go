package call

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// talk is a connected call with two customer turns lasting 60s.
func talk() *Record {
	d := 60.0
	return &Record{
		CallID: "c", AgentID: "a", EndedAt: time.Date(2026, 11, 20, 15, 0, 0, 0, time.UTC),
		EndedReason: "customer-ended-call", Duration: &d,
		Transcript: []Turn{
			{Role: RoleAgent, Text: "Hi"},
			{Role: RoleUser, Text: "Hello"},
			{Role: RoleAgent, Text: "How can I help?"},
			{Role: RoleUser, Text: "Book a demo"},
		},
	}
}

func seconds(s float64) *float64 { return &s }

func TestAutoDisposition(t *testing.T) {
	t.Parallel()
	silent := []Turn{{Role: RoleAgent, Text: "Hello? Anyone there?"}, {Role: RoleUser, Text: "  "}}
	cases := []struct {
		name   string
		mutate func(r *Record)
		min    int
		minDur time.Duration
		want   string // "" = goes to the model
	}{
		{"conversation goes to the model", func(r *Record) {}, 1, 5 * time.Second, ""},

		// 1. Not connected, from the reason.
		{"no answer", func(r *Record) { r.EndedReason = "customer-did-not-answer"; r.Transcript = nil }, 1, 0, DispositionNoAnswer},
		{"busy", func(r *Record) { r.EndedReason = "customer-busy"; r.Transcript = nil }, 1, 0, DispositionBusy},
		{"failed to start", func(r *Record) { r.EndedReason = "call.start.error-get-org" }, 1, 0, DispositionFailed},
		{"retell dial_no_answer", func(r *Record) { r.EndedReason = "dial_no_answer" }, 1, 0, DispositionNoAnswer},
		{"retell user_declined", func(r *Record) { r.EndedReason = "user_declined" }, 1, 0, DispositionNoAnswer},
		{"sip family", func(r *Record) { r.EndedReason = "call.in-progress.error-sip-new-failure" }, 1, 0, DispositionFailed},
		// Not connected beats a transcript: an IVR can be transcribed as speech.
		{"no answer with transcript", func(r *Record) { r.EndedReason = "customer-did-not-answer" }, 1, 0, DispositionNoAnswer},

		// 2. Voicemail.
		{"voicemail reason", func(r *Record) { r.EndedReason = "voicemail" }, 1, 0, DispositionVoicemail},
		{"retell machine_detected", func(r *Record) { r.EndedReason = "machine_detected"; r.Transcript = nil }, 1, 0, DispositionVoicemail},

		// Status decides when the reason is absent, unknown or says nothing.
		{"status no_answer", func(r *Record) { r.EndedReason = ""; r.Status = "no_answer" }, 1, 0, DispositionNoAnswer},
		{"status twilio no-answer", func(r *Record) { r.EndedReason = ""; r.Status = "No-Answer" }, 1, 0, DispositionNoAnswer},
		{"status busy", func(r *Record) { r.EndedReason = "brand-new-reason"; r.Status = "busy" }, 1, 0, DispositionBusy},
		{"status failed", func(r *Record) { r.EndedReason = ""; r.Status = "failed" }, 1, 0, DispositionFailed},
		{"status voicemail", func(r *Record) { r.EndedReason = "manually-canceled"; r.Status = "voicemail" }, 1, 0, DispositionVoicemail},
		{"status completed", func(r *Record) { r.EndedReason = ""; r.Status = "completed" }, 1, 0, ""},
		// A catalogued reason outranks status.
		{"reason outranks status", func(r *Record) { r.EndedReason = "customer-busy"; r.Status = "voicemail" }, 1, 0, DispositionBusy},
		{"connected reason outranks status", func(r *Record) { r.Status = "failed" }, 1, 0, ""},

		// disconnected_by decides last.
		{"disconnected_by voicemail", func(r *Record) { r.EndedReason = ""; r.Status = "x"; r.DisconnectedBy = ByVoicemail }, 1, 0, DispositionVoicemail},
		{"disconnected_by no_answer", func(r *Record) { r.EndedReason = "new"; r.DisconnectedBy = ByNoAnswer }, 1, 0, DispositionNoAnswer},
		{"disconnected_by rejected", func(r *Record) { r.EndedReason = "new"; r.DisconnectedBy = ByRejected }, 1, 0, DispositionNoAnswer},
		{"status outranks disconnected_by", func(r *Record) { r.EndedReason = ""; r.Status = "busy"; r.DisconnectedBy = ByVoicemail }, 1, 0, DispositionBusy},
		{"customer hung up", func(r *Record) { r.EndedReason = "new"; r.DisconnectedBy = ByCustomer }, 1, 0, ""},

		// Errors with no sign of a connection failed; with one, the customer decides.
		{"unknown error, nothing connected", func(r *Record) { r.EndedReason = "unknown-error"; r.Transcript = nil; r.Duration = nil }, 1, 0, DispositionFailed},
		{"disconnected_by error, nothing connected", func(r *Record) {
			r.EndedReason = "new"
			r.DisconnectedBy = ByError
			r.Transcript = silent
		}, 1, 0, DispositionFailed},
		{"unknown error, answered, silent", func(r *Record) {
			r.EndedReason = "unknown-error"
			r.Transcript = nil
			r.AnsweredAt = &r.EndedAt
		}, 1, 0, DispositionNoResponse},
		{"unknown error after a conversation", func(r *Record) { r.EndedReason = "unknown-error" }, 1, 0, ""},

		// 3. Silence.
		{"customer never spoke", func(r *Record) { r.Transcript = r.Transcript[:1] }, 1, 0, DispositionNoResponse},
		{"blank user turns are silence", func(r *Record) { r.Transcript = silent }, 1, 0, DispositionNoResponse},
		{"no transcript", func(r *Record) { r.Transcript = nil }, 1, 0, DispositionNoResponse},
		{"silence even with min_user_turns 0", func(r *Record) { r.Transcript = nil }, 0, 0, DispositionNoResponse},
		{"RNR", func(r *Record) { r.EndedReason = ""; r.Status = ""; r.DisconnectedBy = ByRNR }, 1, 0, DispositionNoResponse},
		{"RNR despite noise turns", func(r *Record) { r.DisconnectedBy = ByRNR }, 1, 0, DispositionNoResponse},
		{"silent pipeline error", func(r *Record) { r.EndedReason = "pipeline-error-openai-llm-failed"; r.Transcript = silent }, 1, 0, DispositionNoResponse},
		{"silence beats thresholds", func(r *Record) { r.Transcript = nil; r.Duration = seconds(1) }, 3, 5 * time.Second, DispositionNoResponse},

		// 4. Thresholds, at the boundary.
		{"turns below min", func(r *Record) {}, 3, 0, DispositionTooShort},
		{"turns at min", func(r *Record) {}, 2, 0, ""},
		{"min_user_turns 0", func(r *Record) {}, 0, 0, ""},
		{"duration below min", func(r *Record) { r.Duration = seconds(4.999) }, 1, 5 * time.Second, DispositionTooShort},
		{"duration at min", func(r *Record) { r.Duration = seconds(5) }, 1, 5 * time.Second, ""},
		{"talk_ms below min", func(r *Record) { ms := int64(4999); r.Duration = nil; r.TalkMs = &ms }, 1, 5 * time.Second, DispositionTooShort},
		{"answered_at below min", func(r *Record) {
			a := r.EndedAt.Add(-4 * time.Second)
			r.Duration = nil
			r.AnsweredAt = &a
		}, 1, 5 * time.Second, DispositionTooShort},
		{"unknown duration is not short", func(r *Record) { r.Duration = nil }, 1, 5 * time.Second, ""},
		{"zero min duration", func(r *Record) { r.Duration = seconds(0) }, 1, 0, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := talk()
			c.mutate(r)
			got, ok := AutoDisposition(r, c.min, c.minDur)
			if c.want == "" {
				require.False(t, ok, "got %+v", got)
				require.Equal(t, Auto{}, got)
				return
			}
			require.True(t, ok)
			require.Equal(t, c.want, got.Disposition)
			require.NotEmpty(t, got.Reason)
		})
	}
}

func TestAutoDispositionReasons(t *testing.T) {
	t.Parallel()
	r := talk()
	r.EndedReason = "customer-did-not-answer"
	got, _ := AutoDisposition(r, 1, 0)
	require.Equal(t, Auto{DispositionNoAnswer, `ended_reason "customer-did-not-answer" (No answer)`}, got)

	r = talk()
	r.EndedReason = ""
	r.Status = "busy"
	got, _ = AutoDisposition(r, 1, 0)
	require.Equal(t, Auto{DispositionBusy, `status "busy"`}, got)

	got, _ = AutoDisposition(talk(), 3, 0)
	require.Equal(t, Auto{DispositionTooShort, "2 customer turns, fewer than the agent's minimum of 3"}, got)

	got, _ = AutoDisposition(talk(), 1, 90*time.Second)
	require.Equal(t, Auto{DispositionTooShort, "lasted 1m0s, shorter than the agent's minimum of 1m30s"}, got)
}

func TestDeriveStatus(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		mutate func(r *Record)
		want   string
	}{
		{"record status wins", func(r *Record) { r.Status = "Completed"; r.EndedReason = "customer-busy" }, "Completed"},
		{"connected reason", func(r *Record) {}, StatusCompleted},
		{"no answer", func(r *Record) { r.EndedReason = "customer-did-not-answer" }, DispositionNoAnswer},
		{"busy", func(r *Record) { r.EndedReason = "dial_busy" }, DispositionBusy},
		{"failed", func(r *Record) { r.EndedReason = "twilio-failed-to-connect-call" }, DispositionFailed},
		{"voicemail", func(r *Record) { r.EndedReason = "voicemail" }, DispositionVoicemail},
		{"unknown reason, customer spoke", func(r *Record) { r.EndedReason = "new" }, StatusCompleted},
		{"unknown reason, silent", func(r *Record) { r.EndedReason = "new"; r.Transcript = nil }, ""},
		{"unknown reason, error", func(r *Record) { r.EndedReason = "new"; r.Transcript = nil; r.DisconnectedBy = ByError }, DispositionFailed},
		{"ambiguous reason, silent", func(r *Record) { r.EndedReason = "manually-canceled"; r.Transcript = nil }, ""},
		{"disconnected_by rejected", func(r *Record) { r.EndedReason = ""; r.DisconnectedBy = ByRejected }, DispositionNoAnswer},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := talk()
			c.mutate(r)
			require.Equal(t, c.want, DeriveStatus(r))
		})
	}
}

func TestDisconnectedBy(t *testing.T) {
	t.Parallel()
	r := talk()
	require.Equal(t, ByCustomer, DisconnectedBy(r), "from the catalogue")
	r.DisconnectedBy = ByTimeout
	require.Equal(t, ByTimeout, DisconnectedBy(r), "the record's own value wins")
	r = talk()
	r.EndedReason = "new-value"
	require.Empty(t, DisconnectedBy(r), "an unknown reason says nothing")
	r.EndedReason = ""
	r.Status = "voicemail"
	require.Equal(t, ByVoicemail, DisconnectedBy(r))
	r.Status = "no-answer"
	require.Equal(t, ByNoAnswer, DisconnectedBy(r))
}
