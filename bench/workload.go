package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/postcall/postcall/agent"
	"github.com/postcall/postcall/call"
	"github.com/postcall/postcall/store"
)

// agentID is the one agent every scenario's calls belong to.
const agentID = "bench-solar-setter"

// webhookSecret signs the benchmark's webhook deliveries (Standard Webhooks
// format; not a real secret).
const webhookSecret = "whsec_YmVuY2htYXJrLXdlYmhvb2stc2VjcmV0LTAx"

// planYAML is a realistic agent: a long analysis prompt with twenty typed
// fields and a QC checklist of twelve items, so that each request's static
// prefix (schema, instructions, field list or checklist) is well above the
// 1,024 tokens from which OpenAI caches a prompt, as in production. %s is
// the webhook receiver's URL.
const planYAML = `
id: ` + agentID + `
name: Benchmark solar appointment setter
model: gpt-4.1-mini
analysis:
  prompt: |
    You review outbound calls made by Brightline Solar's voice agent, "Ava", to homeowners who asked
    for a solar quote through a web form, a partner referral or a home-improvement marketplace. Ava's
    job on the call is to confirm the lead is a homeowner, check that the house is a good fit for
    rooftop solar (roof age and condition, shading, monthly electricity bill, utility provider), answer
    first questions about financing, leasing and tax credits at a high level, and book an in-home or
    video consultation with a solar advisor. Ava never quotes prices, never promises savings figures,
    and must hand over to a human when the homeowner asks for one.

    Your analysis feeds three systems. The sales team's CRM uses the outcome, the appointment fields
    and the next step to schedule advisors; a wrong appointment date sends an advisor to the wrong
    house on the wrong day, so only fill the appointment fields when the homeowner clearly agreed to a
    date and a time window on the call. The marketing team uses interest level, objections, competitor
    mentions and the lead source to judge campaigns; be conservative: a homeowner who is polite but
    non-committal is not "high" interest. The compliance team uses the do-not-call flag and consent
    fields; set do_not_call to true whenever the homeowner asks, in any words, not to be called again,
    even if the rest of the call went well, and treat "take me off your list", "stop calling me" and
    "I am not interested, do not call back" the same way.

    Definitions. A homeowner is the person who owns the property or is a co-owner or spouse of the
    owner; a tenant, a landlord's agent or a relative who does not own the house is not. Roof age is
    the age in whole years the homeowner states, or the years since a replacement they mention (a roof
    "replaced in 2015" on a call in 2026 is 11 years old); leave it null when they do not know. The
    monthly bill is the typical electricity bill in US dollars the homeowner states; when they give a
    range, use its midpoint; when they give a yearly figure, divide by twelve. Shading describes trees
    or buildings over the roof as the homeowner describes them. The utility provider is the electric
    utility's name as the homeowner says it, without abbreviations expanded or corrected.

    Outcome values. "booked": a consultation date and window were agreed. "callback": the homeowner
    asked to be called again at another time, or a spouse must be present and no date was fixed.
    "not_qualified": the lead is not a homeowner, the roof is unsuitable (flat shared roof, mobile home
    without a permanent roof, heavy shading the homeowner cannot change), or the property is outside
    the service area. "not_interested": the homeowner declined. "wrong_number": the person reached is
    not the lead. "transferred": Ava handed the call to a human. Use exactly one of these values; when
    in doubt between "callback" and "not_interested", prefer "callback" only if the homeowner named a
    time or a condition for calling back.

    Objections and next step are short free-text summaries in plain English, at most two sentences
    each, written for a sales advisor who will read them before the consultation. Never include the
    homeowner's phone number, street address or email address in free-text fields; the email address
    has a field of its own. Quote nothing verbatim that identifies the homeowner.
  fields:
    - {name: summary, type: string, description: "Two or three sentences for the advisor: who Ava reached, what the homeowner wants, what was agreed. No contact details."}
    - {name: outcome, type: enum, values: [booked, callback, not_qualified, not_interested, wrong_number, transferred], description: "The call's outcome as defined in the instructions above."}
    - {name: success, type: boolean, description: "True when a consultation was booked or a callback with a named time was agreed."}
    - {name: interest_level, type: integer, description: "1 (none) to 5 (asked to book before Ava offered); 3 means polite but non-committal."}
    - {name: is_homeowner, type: boolean, description: "The person on the call owns or co-owns the property, as defined above; null when not established."}
    - {name: roof_age_years, type: integer, description: "Roof age in whole years as defined above; null when unknown."}
    - {name: monthly_bill_usd, type: number, description: "Typical monthly electricity bill in US dollars as defined above; null when not stated."}
    - {name: utility_provider, type: string, description: "The electric utility's name as the homeowner said it; null when not stated."}
    - {name: shading, type: enum, values: [none, partial, heavy], description: "Shading over the roof as the homeowner described it; null when not discussed."}
    - {name: appointment_date, type: date, description: "Agreed consultation date; only when the homeowner clearly agreed to it."}
    - {name: appointment_window, type: enum, values: [morning, afternoon, evening], description: "Agreed time window of the consultation; only with appointment_date."}
    - {name: appointment_type, type: enum, values: [in_home, video], description: "Kind of consultation agreed; null when none was booked."}
    - {name: spouse_required, type: boolean, description: "The homeowner wants a spouse or co-owner present at the consultation."}
    - {name: objections, type: string, description: "The homeowner's objections or concerns in at most two sentences (price, roof, HOA rules, moving soon, bad past experience)."}
    - {name: competitor_mentioned, type: string, description: "Name of another solar company the homeowner mentioned; null when none."}
    - {name: financing_interest, type: enum, values: [cash, loan, lease, undecided], description: "How the homeowner would pay, if they said so."}
    - {name: do_not_call, type: boolean, description: "True whenever the homeowner asked not to be called again, in any words."}
    - {name: email, type: string, pii: true, description: "Email address the homeowner gave for the confirmation, exactly as spelled on the call."}
    - {name: sentiment, type: enum, values: [positive, neutral, negative], description: "The homeowner's overall attitude towards Ava by the end of the call."}
    - {name: next_step, type: string, description: "What the advisor or Ava must do next, in one sentence."}
  summary_field: summary
  disposition_field: outcome
  success_field: success
  skip: {min_user_turns: 1, min_duration: 5}
qc:
  prompt: |
    You audit calls made by Brightline Solar's voice agent, "Ava", for the quality and compliance team.
    Judge only Ava's behaviour, never the homeowner's. Each checklist item below describes what Ava
    must do; an item is passed when the transcript shows Ava did it, and failed when Ava did not do it
    or did it wrongly. When an item could not apply on this call (for example, no appointment was
    booked, so the confirmation item has nothing to confirm), it is passed.

    Evidence is the shortest quote from the transcript that shows the item passed or failed, at most
    twenty words, with personal details (names, numbers, addresses, emails) replaced by [redacted].
    When the evidence is an absence (Ava never mentioned the recording), say so in a few words instead
    of quoting.

    Be strict on compliance items: recording consent must be asked before any qualification question;
    a request not to be called again must be acknowledged on the call and never argued with; Ava must
    not promise savings amounts, prices, approval for financing or tax credit amounts, even as
    examples. Be fair on conversational items: a short greeting that names Ava and Brightline Solar is
    enough; a polite close does not need a script.
  checklist:
    - {id: greeting, description: "Ava introduced herself by name and named Brightline Solar in her first turn.", weight: 1}
    - {id: recording_consent, description: "Ava asked for consent to record before any qualification question and respected a refusal.", weight: 3, fatal: true}
    - {id: reason_for_call, description: "Ava explained why she called: the homeowner's own quote request, naming where it came from.", weight: 1}
    - {id: homeowner_check, description: "Ava confirmed the person is the homeowner or co-owner before qualifying the property.", weight: 2}
    - {id: qualification, description: "Ava asked about roof age, shading and the monthly electricity bill, or the homeowner volunteered them.", weight: 2}
    - {id: no_price_promises, description: "Ava gave no price, savings figure, financing approval or tax credit amount, even as an example.", weight: 3, fatal: true}
    - {id: objection_handling, description: "Ava acknowledged each objection and answered it briefly without pressure, or offered an advisor.", weight: 2}
    - {id: human_handover, description: "When the homeowner asked for a human, Ava offered a transfer or a callback from an advisor at once.", weight: 2}
    - {id: dnc_respected, description: "When asked not to be called again, Ava confirmed it and ended the call without further pitching.", weight: 3, fatal: true}
    - {id: appointment_confirmation, description: "When a consultation was booked, Ava repeated the date, the time window and the kind of visit.", weight: 2}
    - {id: accurate_information, description: "Everything Ava said about Brightline Solar, the process and incentives was consistent and not misleading.", weight: 2}
    - {id: polite_close, description: "Ava closed the call politely and told the homeowner what happens next.", weight: 1}
  pass_score: 7
cache: {enabled: true, retention: 24h}
integrations:
  - {name: crm-webhook, type: webhook, url: %q, secret: %q}
retention: {purge_after_days: 30, hard_delete_after_days: 30}
`

// applyPlan stores the benchmark agent's plan, delivering to receiverURL.
func applyPlan(ctx context.Context, db store.DBTX, receiverURL string) error {
	plans, err := agent.ParsePlans([]byte(fmt.Sprintf(planYAML, receiverURL, webhookSecret)))
	if err != nil {
		return fmt.Errorf("benchmark plan: %w", err)
	}
	if _, _, err := store.ApplyPlan(ctx, db, &plans[0]); err != nil {
		return fmt.Errorf("apply benchmark plan: %w", err)
	}
	return nil
}

// firstCallStart is when the first synthetic call of the throughput
// scenarios starts: 14:00 UTC seven days ago. It must be recent: the
// benchmark plan keeps calls 30 days, and the worker's retention jobs run at
// its start, so older calls would be purged while the scenario runs (a
// fixed date did that once it was a month old). Seven days leave room for
// the longest workload (7,680 calls 37 s apart, about 79 hours); the prompts
// differ from day to day only in the dates they hold.
func firstCallStart() time.Time {
	day := time.Now().UTC().Truncate(24 * time.Hour)
	return day.AddDate(0, 0, -7).Add(14 * time.Hour)
}

// makeCalls returns n distinct, valid call records of the benchmark agent
// that all need the model (none gets an auto disposition): 10 to 40 turns of
// conversation each, about 800 tokens of per-call content on average. They
// are generated from seed, so runs are comparable, and parsed like an
// ingest line. The first starts at base, the others 37 seconds apart. They
// hold no personal data: the numbers are fictional (+1555010...) and nobody
// is named but the agent.
func makeCalls(prefix string, n int, seed uint64, base time.Time) ([]*call.Record, error) {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	endedReasons := []string{"customer-ended-call", "assistant-ended-call"}
	campaigns := []string{"spring-web-form", "partner-referral", "marketplace-lead", "summer-retargeting"}
	recs := make([]*call.Record, n)
	for i := range n {
		started := base.Add(time.Duration(i) * 37 * time.Second)
		turns := conversation(rng)
		duration := float64(turns[len(turns)-1].TMs/1000 + 5)
		reason := endedReasons[rng.IntN(len(endedReasons))]
		by := "customer"
		if reason == "assistant-ended-call" {
			by = "bot"
		}
		contact, err := json.Marshal(map[string]any{
			"lead_source": campaigns[rng.IntN(len(campaigns))],
			"lead_score":  rng.IntN(100),
			"form_id":     fmt.Sprintf("F-%05d", rng.IntN(100000)),
		})
		if err != nil {
			return nil, err
		}
		raw, err := json.Marshal(benchRecord{
			CallID:         fmt.Sprintf("%s-%06d", prefix, i),
			AgentID:        agentID,
			Direction:      "outbound",
			PhoneNumber:    fmt.Sprintf("+1555010%04d", i%10000),
			StartedAt:      started,
			EndedAt:        started.Add(time.Duration(duration) * time.Second),
			Duration:       duration,
			EndedReason:    reason,
			DisconnectedBy: by,
			Transcript:     turns,
			ContactData:    contact,
		})
		if err != nil {
			return nil, err
		}
		if recs[i], err = call.ParseRecord(raw); err != nil {
			return nil, fmt.Errorf("synthetic call %d: %w", i, err)
		}
	}
	return recs, nil
}

// benchRecord is the JSON of one synthetic call, as the platform sends it.
type benchRecord struct {
	CallID         string          `json:"call_id"`
	AgentID        string          `json:"agent_id"`
	Direction      string          `json:"direction"`
	PhoneNumber    string          `json:"phone_number"`
	StartedAt      time.Time       `json:"started_at"`
	EndedAt        time.Time       `json:"ended_at"`
	Duration       float64         `json:"duration"`
	EndedReason    string          `json:"ended_reason"`
	DisconnectedBy string          `json:"disconnected_by"`
	Transcript     []benchTurn     `json:"transcript"`
	ContactData    json.RawMessage `json:"contact_data"`
}

type benchTurn struct {
	Role string `json:"role"`
	Text string `json:"text"`
	TMs  int64  `json:"t_ms"`
}

// conversation is a synthetic transcript: 10 to 40 turns, agent first,
// each one or two lines of the agent's or the customer's phrases.
func conversation(rng *rand.Rand) []benchTurn {
	agentLines := []string{
		"Hi, this is Ava from Brightline Solar. You asked for a solar quote on our website last week. Is it OK if I record this call for quality?",
		"Thanks. Just to confirm, are you the owner of the home where you'd like the panels installed?",
		"Great. Roughly how old is your roof, and has it been replaced since you moved in?",
		"Are there any tall trees or buildings that shade the roof for a good part of the day?",
		"And what does your electricity bill usually come to in a typical month?",
		"Which utility company sends you that bill?",
		"That sounds like a good fit. The next step is a free consultation with one of our solar advisors, either at your home or by video. Would that work for you?",
		"We have openings on Tuesday and Thursday next week, mornings or afternoons. What suits you best?",
		"I understand. Financing is something the advisor will go through in detail, including cash, loans and leases; I can't quote numbers on this call.",
		"No problem at all. Would you like the advisor to call you back instead, at a time that's better for you?",
		"Of course. I'll make sure you're not contacted again. Sorry for the interruption and have a good day.",
		"Perfect, you're booked for Thursday afternoon, a video consultation. You'll get a confirmation by email shortly.",
		"Is there anything else you'd like the advisor to know before the visit, like HOA rules or plans to re-roof?",
		"Thanks for your time today. The advisor will bring a design for your roof and go through the numbers with you.",
		"I can connect you with a human advisor right now if you'd prefer. One moment, please.",
	}
	userLines := []string{
		"Yes, that's fine, go ahead.",
		"Yeah, I own it, my wife and I bought it about eight years ago.",
		"The roof was replaced in 2015, I think, after the big hail storm.",
		"There's one big oak in the back yard but the front of the house gets full sun all afternoon.",
		"It's usually somewhere between two hundred and two fifty a month, more in the summer with the AC.",
		"We're with the county electric co-op.",
		"Honestly I'm worried about the cost. My neighbour got a quote from another company and it was a lot.",
		"Thursday afternoon works. Can we do it by video? My husband works from home and wants to join.",
		"I'm not sure yet, I need to talk to my partner first. Can you call back next week?",
		"Please take me off your list, I'm not interested.",
		"What kind of tax credit would I get? Would it pay for half of it?",
		"We might be moving in a couple of years, does it still make sense?",
		"Is this a real person? I'd rather talk to someone from your office.",
		"Sure, send the confirmation to the email I put on the form.",
		"Okay, sounds good. Thanks for calling.",
		"We have an HOA, they're pretty strict about what goes on the roof facing the street.",
	}
	turns := make([]benchTurn, 10+rng.IntN(31))
	var t int64
	for j := range turns {
		role, lines := "agent", agentLines
		if j%2 == 1 {
			role, lines = "user", userLines
		}
		text := lines[rng.IntN(len(lines))]
		if rng.IntN(4) == 0 {
			text += " " + lines[rng.IntN(len(lines))]
		}
		turns[j] = benchTurn{Role: role, Text: text, TMs: t}
		t += int64(1500 + len(text)*55 + rng.IntN(2000))
	}
	return turns
}
