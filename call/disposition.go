package call

import (
	"fmt"
	"time"
)

// StatusCompleted is the derived status of a call that connected.
const StatusCompleted = "completed"

// Auto is an automatic disposition: the call gets it with
// disposition_source "auto", no LLM request and no QC.
type Auto struct {
	// Disposition is no_answer, busy, failed, voicemail, no_response or
	// too_short (the Disposition* constants).
	Disposition string
	// Reason says in words what decided it, naming the record's value, for
	// the call document and for whoever wonders why a call was not analysed.
	Reason string
}

// AutoDisposition decides whether a call is disposed of without a model,
// given the agent's skip thresholds (agent.Analysis.MinUserTurns and
// MinDuration). ok false means the call goes to analysis.
//
// Precedence, first match wins:
//  1. The line: what the record says about the connection, taken from the
//     most specific source that says anything: a catalogued ended_reason,
//     else status, else disconnected_by (see lineOf). Not connected gives
//     no_answer, busy or failed; reaching voicemail gives voicemail. A
//     source that says the call connected ends the search: a less specific
//     source cannot overrule it.
//  2. Nothing says whether the call connected, nothing shows it did (no
//     customer words, no answered_at, no talk time) and an error ended it:
//     failed.
//  3. Silence: disconnected_by RNR, or no customer turn with words, gives
//     no_response. This holds even when the agent's min_user_turns is 0:
//     the contract disposes of every call where the customer never spoke,
//     and there is nothing of the customer's to analyse.
//  4. Thresholds: fewer customer turns than minUserTurns, or a known
//     duration (EffectiveDuration) below minDuration, gives too_short. Equal
//     to the threshold is enough to be analysed. An unknown duration is not
//     judged: a missing value is not a short call.
func AutoDisposition(r *Record, minUserTurns int, minDuration time.Duration) (Auto, bool) {
	l := lineOf(r)
	if l.outcome != "" {
		return Auto{Disposition: l.outcome, Reason: l.why}, true
	}
	if !l.connected && !connectionEvidence(r) && endedByError(r) {
		return Auto{Disposition: DispositionFailed, Reason: "ended by an error with no sign that the call connected"}, true
	}
	turns := UserTurns(r)
	if r.DisconnectedBy == ByRNR {
		return Auto{Disposition: DispositionNoResponse, Reason: `disconnected_by "RNR": the customer stayed silent`}, true
	}
	if turns == 0 {
		return Auto{Disposition: DispositionNoResponse, Reason: "the customer never spoke"}, true
	}
	if turns < minUserTurns {
		return Auto{
			Disposition: DispositionTooShort,
			Reason:      fmt.Sprintf("%d customer turns, fewer than the agent's minimum of %d", turns, minUserTurns),
		}, true
	}
	if minDuration > 0 {
		if d, ok := EffectiveDuration(r); ok && d < minDuration {
			return Auto{
				Disposition: DispositionTooShort,
				Reason:      fmt.Sprintf("lasted %s, shorter than the agent's minimum of %s", d, minDuration),
			}, true
		}
	}
	return Auto{}, false
}

// DeriveStatus is the call's status for the call document: the record's
// status when it has one (as given), else what the line says: completed for
// a connected call, no_answer, busy, failed or voicemail otherwise, and ""
// when nothing in the record tells.
func DeriveStatus(r *Record) string {
	if r.Status != "" {
		return r.Status
	}
	l := lineOf(r)
	switch {
	case l.outcome != "":
		return l.outcome
	case l.connected, connectionEvidence(r):
		return StatusCompleted
	case endedByError(r):
		return DispositionFailed
	}
	return ""
}

// DisconnectedBy is who ended the call: the record's disconnected_by, else
// what its ended_reason implies, else what its status implies for voicemail
// and unanswered calls; "" when nothing says.
func DisconnectedBy(r *Record) string {
	if r.DisconnectedBy != "" {
		return r.DisconnectedBy
	}
	if by := LookupReason(r.EndedReason).DisconnectedBy; by != "" {
		return by
	}
	switch statusLine[aliasKey(r.Status)] {
	case DispositionVoicemail:
		return ByVoicemail
	case DispositionNoAnswer:
		return ByNoAnswer
	}
	return ""
}

// line is what a record says about its connection.
type line struct {
	// outcome is no_answer, busy, failed or voicemail when the call did not
	// reach the customer.
	outcome string
	// connected is true when a source says the customer was reached.
	connected bool
	// why names the value that decided.
	why string
}

// statusConnected marks a status value that says the call connected.
const statusConnected = "connected"

// statusLine reads the status values platforms send (aliasKey form):
// seed 001's completed, failed, voicemail, no_answer, Twilio's busy,
// no-answer, canceled, Retell's ended, not_connected, error.
var statusLine = map[string]string{
	"no_answer": DispositionNoAnswer, "noanswer": DispositionNoAnswer, "not_answered": DispositionNoAnswer,
	"unanswered": DispositionNoAnswer, "rejected": DispositionNoAnswer, "declined": DispositionNoAnswer,
	"busy":   DispositionBusy,
	"failed": DispositionFailed, "failure": DispositionFailed, "error": DispositionFailed,
	"not_connected": DispositionFailed, "canceled": DispositionFailed, "cancelled": DispositionFailed,
	"voicemail": DispositionVoicemail, "answering_machine": DispositionVoicemail, "machine": DispositionVoicemail,
	"completed": statusConnected, "complete": statusConnected, "ended": statusConnected,
	"answered": statusConnected, "in_progress": statusConnected, "ongoing": statusConnected,
}

// disconnectedByLine reads disconnected_by. A rejected call counts as
// no_answer, not failed: the other end chose not to take it, nothing broke,
// and a later attempt may well be answered. error says nothing about the
// connection (it covers failures to start and mid-call problems alike).
var disconnectedByLine = map[string]string{
	ByVoicemail: DispositionVoicemail,
	ByNoAnswer:  DispositionNoAnswer,
	ByRejected:  DispositionNoAnswer,
	ByBot:       statusConnected,
	ByCustomer:  statusConnected,
	ByRNR:       statusConnected,
	ByTimeout:   statusConnected,
}

// lineOf reads the connection from the most specific source that says
// anything: a catalogued ended_reason, then status, then disconnected_by.
func lineOf(r *Record) line {
	if reason := LookupReason(r.EndedReason); reason.Known {
		why := fmt.Sprintf("ended_reason %q (%s)", r.EndedReason, reason.Label)
		switch {
		case reason.Outcome != "":
			return line{outcome: reason.Outcome, why: why}
		case reason.Connected:
			return line{connected: true, why: why}
		}
	}
	if s, ok := statusLine[aliasKey(r.Status)]; ok {
		why := fmt.Sprintf("status %q", r.Status)
		if s == statusConnected {
			return line{connected: true, why: why}
		}
		return line{outcome: s, why: why}
	}
	if s, ok := disconnectedByLine[r.DisconnectedBy]; ok {
		why := fmt.Sprintf("disconnected_by %q", r.DisconnectedBy)
		if s == statusConnected {
			return line{connected: true, why: why}
		}
		return line{outcome: s, why: why}
	}
	return line{}
}

// connectionEvidence reports whether the record shows the call connected
// whatever its reason says: the customer spoke, it was answered, or there
// was talk time.
func connectionEvidence(r *Record) bool {
	return UserTurns(r) > 0 || r.AnsweredAt != nil || (r.TalkMs != nil && *r.TalkMs > 0)
}

// endedByError reports whether the record or its reason says an error ended
// the call.
func endedByError(r *Record) bool {
	return DisconnectedBy(r) == ByError
}
