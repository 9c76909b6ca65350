package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/postcall/postcall/agent"
	"github.com/postcall/postcall/crm"
	"github.com/postcall/postcall/store"
)

// Deliveries pushes finalized calls to their agent's integrations, at least
// once, with a log row per attempt.
type Deliveries struct {
	// Deliverer sends the HTTP requests. Required.
	Deliverer *crm.Deliverer
	// Now is the clock of retry and disablement decisions. Default
	// time.Now.
	Now func() time.Time
	// Jitter returns the adjustment added to a retry's base delay, so that
	// deliveries failing together do not retry together. Default crm.Jitter
	// (within ±10%).
	Jitter func(time.Duration) time.Duration
	// DisableAfter disables an integration that has failed continuously for
	// this long. Default crm.DefaultDisableWindow (5 days).
	DisableAfter time.Duration
	// Links makes the permanent recording links put in CRM payloads
	// (*recording.Links). Default nil: payloads carry no recording link.
	Links RecordingLinks
	// Observer, when set, is told of every attempt once it is recorded
	// (e.g. for metrics). It must be safe for concurrent use and must not
	// block. Default none.
	Observer func(DeliveryObservation)
	// Logger defaults to slog.Default().
	Logger *slog.Logger

	// plans caches the plan versions of the calls delivered.
	plans store.PlanCache
}

// RecordingLinks makes a call's permanent recording link;
// *recording.Links is one.
type RecordingLinks interface {
	Link(callID string) string
}

// DeliveryObservation describes one recorded delivery attempt to an
// Observer. It holds no payload, target or personal data.
type DeliveryObservation struct {
	// Type is the integration type (webhook, hubspot, gohighlevel,
	// pipedrive).
	Type string
	// Outcome is the attempt's crm.Outcome (delivered, retry, permanent,
	// disable), or skipped when the integration was disabled.
	Outcome string
	// Status is the delivery's status after the attempt: pending (a retry
	// follows), delivered, failed or disabled.
	Status store.DeliveryStatus
	// StatusCode is the HTTP status; 0 when no response arrived.
	StatusCode int
	// Latency is the HTTP round trip; 0 when nothing was sent.
	Latency time.Duration
}

// Create adds one pending delivery per integration of the call's agent, in
// tx, and returns their ids for the caller to enqueue. An integration that is
// disabled gets a delivery in status disabled, so the call document says why
// nothing was sent.
func (d *Deliveries) Create(ctx context.Context, tx pgx.Tx, c *store.Call, plan *agent.Plan) ([]string, error) {
	var ids []string
	for _, in := range plan.Integrations {
		del := &store.Delivery{
			ID: store.NewDeliveryID(), CallID: c.ID, AgentID: plan.ID, Integration: in.Name, Type: in.Type,
			Status: store.DeliveryPending,
		}
		health, err := store.IntegrationHealth(ctx, tx, plan.ID, in.Name)
		if err != nil {
			return nil, err
		}
		if health.DisabledAt != nil {
			del.Status = store.DeliveryDisabled
			msg := "integration disabled: " + deref(health.DisabledReason) + " (`postcall redeliver` re-enables it)"
			del.LastError = &msg
		}
		if err := store.CreateDelivery(ctx, tx, del); err != nil {
			return nil, err
		}
		if del.Status == store.DeliveryPending {
			ids = append(ids, del.ID)
		}
	}
	return ids, nil
}

// Attempted is one decided delivery attempt: what Attempt did (or found
// already done), for Record to store in the caller's transaction.
type Attempted struct {
	del *store.Delivery
	// rec is the attempt to record; nil when the delivery was decided
	// before (a retried job): nothing new is stored.
	rec *store.AttemptRecord
	// sent is set when a request went out: the integration's health
	// changes and the attempt is logged.
	sent    bool
	attempt crm.Attempt
	now     time.Time
	// RetryIn is how long until the next attempt when the delivery is not
	// Final.
	RetryIn time.Duration
}

// Final reports whether the delivery is decided (delivered, failed,
// disabled): its job completes. Otherwise it is tried again after RetryIn.
func (a *Attempted) Final() bool { return a.rec == nil || a.rec.Status != store.DeliveryPending }

// String names the delivery for error messages.
func (a *Attempted) String() string { return "delivery " + a.del.ID }

// Attempt makes one attempt of a pending delivery, outside any transaction,
// and decides its outcome; the caller stores it with Record (and, when it is
// Final, completes its job in the same transaction), then calls Recorded.
func (d *Deliveries) Attempt(ctx context.Context, db store.DBTX, deliveryID string) (*Attempted, error) {
	work, err := store.GetDeliveryWork(ctx, db, deliveryID)
	if err != nil {
		return nil, err
	}
	del, health, c := work.Delivery, work.Health, work.Call
	if del.Status != store.DeliveryPending {
		return &Attempted{del: del}, nil
	}
	if health.DisabledAt != nil {
		return &Attempted{del: del, rec: &store.AttemptRecord{
			Outcome: "skipped", Status: store.DeliveryDisabled,
			Error: "integration disabled: " + deref(health.DisabledReason),
		}}, nil
	}
	plan, err := d.plans.Version(ctx, db, c.Record.AgentID, work.PlanVersion)
	if err != nil {
		return nil, err
	}
	target, err := d.target(plan, del.Integration)
	if err != nil {
		return &Attempted{del: del, rec: &store.AttemptRecord{
			Outcome: string(crm.OutcomePermanent), Status: store.DeliveryFailed, Error: err.Error(),
		}}, nil
	}
	res, err := d.callResult(ctx, db, c, plan)
	if err != nil {
		return nil, err
	}

	attempt := d.Deliverer.Deliver(ctx, target, *res, del.ID)
	if ctx.Err() != nil {
		// Shutting down: River retries the job; nothing was decided.
		return nil, ctx.Err()
	}
	rec := store.AttemptRecord{
		Outcome: string(attempt.Outcome), StatusCode: attempt.StatusCode, Latency: attempt.Latency,
		ExternalID: attempt.ExternalID,
	}
	if attempt.Err != nil {
		rec.Error = attempt.Err.Error()
	}
	a := &Attempted{del: del, rec: &rec, sent: true, attempt: attempt, now: d.now()}
	switch attempt.Outcome {
	case crm.OutcomeDelivered:
		rec.Status = store.DeliveryDelivered
	case crm.OutcomeRetry:
		if del.Attempts+1 >= crm.MaxAttempts {
			rec.Status = store.DeliveryFailed
			rec.Error = fmt.Sprintf("gave up after %d attempts: %s", del.Attempts+1, rec.Error)
			break
		}
		rec.Status = store.DeliveryPending
		a.RetryIn = max(crm.RetryDelay(del.Attempts+1, d.jitter()), attempt.RetryAfter)
		next := a.now.Add(a.RetryIn)
		rec.NextAttemptAt = &next
	default: // permanent, disable
		rec.Status = store.DeliveryFailed
	}
	return a, nil
}

// Record stores the attempt in tx and, for a request that went out, the
// integration's health.
func (d *Deliveries) Record(ctx context.Context, tx pgx.Tx, a *Attempted) error {
	if a.rec == nil {
		return nil
	}
	if _, err := store.RecordAttempt(ctx, tx, a.del, *a.rec); err != nil {
		return fmt.Errorf("record delivery %s: %w", a.del.ID, err)
	}
	if !a.sent {
		return nil
	}
	if err := d.updateHealth(ctx, tx, a.del, a.attempt, a.now); err != nil {
		return fmt.Errorf("record delivery %s: %w", a.del.ID, err)
	}
	return nil
}

// Recorded tells the Observer of an attempt once its transaction has
// committed, and logs a request that went out.
func (d *Deliveries) Recorded(ctx context.Context, a *Attempted) {
	if a.rec == nil {
		return
	}
	d.observe(a.del, a.rec)
	if !a.sent {
		return
	}
	d.logger().InfoContext(ctx, "delivery attempt", slog.String("delivery", a.del.ID), slog.String("call", a.del.CallID.String()),
		slog.String("integration", a.del.Integration), slog.String("outcome", string(a.attempt.Outcome)),
		slog.Int("status_code", a.attempt.StatusCode), slog.Duration("latency", a.attempt.Latency))
}

// updateHealth ends a run of failures on success, and disables the
// integration on 410 Gone or after DisableAfter of continuous failure.
func (d *Deliveries) updateHealth(ctx context.Context, tx pgx.Tx, del *store.Delivery, a crm.Attempt, now time.Time) error {
	switch a.Outcome {
	case crm.OutcomeDelivered:
		return store.RecordIntegrationSuccess(ctx, tx, del.AgentID, del.Integration)
	case crm.OutcomeDisable:
		return store.DisableIntegration(ctx, tx, del.AgentID, del.Integration, fmt.Sprintf("the receiver answered %d Gone", a.StatusCode), now)
	}
	first, err := store.RecordIntegrationFailure(ctx, tx, del.AgentID, del.Integration, now)
	if err != nil {
		return err
	}
	window := d.DisableAfter
	if window <= 0 {
		window = crm.DefaultDisableWindow
	}
	if crm.ShouldDisable(first, now, window) {
		return store.DisableIntegration(ctx, tx, del.AgentID, del.Integration,
			fmt.Sprintf("failing continuously since %s", first.UTC().Format(time.RFC3339)), now)
	}
	return nil
}

// observe tells the Observer of a recorded attempt.
func (d *Deliveries) observe(del *store.Delivery, rec *store.AttemptRecord) {
	if d.Observer == nil {
		return
	}
	d.Observer(DeliveryObservation{
		Type: del.Type, Outcome: rec.Outcome, Status: rec.Status, StatusCode: rec.StatusCode, Latency: rec.Latency,
	})
}

func (d *Deliveries) target(plan *agent.Plan, name string) (crm.Target, error) {
	for _, in := range plan.Integrations {
		if in.Name == name {
			return crm.Parse(in)
		}
	}
	return nil, fmt.Errorf("integration %q is no longer in agent %s's plan", name, plan.ID)
}

// callResult is what a delivery says about the call: its outcome and the
// current analysis fields.
func (d *Deliveries) callResult(ctx context.Context, db store.DBTX, c *store.Call, plan *agent.Plan) (*crm.CallResult, error) {
	r := &c.Record
	res := &crm.CallResult{
		ID: c.ID.String(), CallID: r.CallID, AgentID: r.AgentID, Direction: r.Direction, Status: r.Status,
		EndedReason: r.EndedReason, Disposition: deref(c.Disposition), DispositionSource: deref(c.DispositionSource),
		GeneralSuccess: c.GeneralSuccess, FinalScore: c.FinalScore, CallSummary: c.CallSummary,
		PhoneNumber: r.PhoneNumber, ContactData: r.ContactData, EndedAt: r.EndedAt, AnalyzedAt: c.UpdatedAt,
	}
	if r.StartedAt != nil {
		res.StartedAt = *r.StartedAt
	}
	if r.Duration != nil {
		res.Duration = time.Duration(*r.Duration * float64(time.Second))
	}
	if plan.Analysis != nil {
		for _, f := range plan.Analysis.Fields {
			if f.PII {
				res.PIIFields = append(res.PIIFields, f.Name)
			}
		}
	}
	if c.AnalysisRunID != nil {
		run, err := store.GetRun(ctx, db, *c.AnalysisRunID)
		if err != nil {
			return nil, err
		}
		if run.Status == store.RunSucceeded {
			if res.Fields, err = decodeFields(run.Output); err != nil {
				return nil, fmt.Errorf("decode analysis run %d: %w", run.ID, err)
			}
			if err := runEvidence(res, run, plan); err != nil {
				return nil, err
			}
		}
		res.Demo = run.Demo
	}
	if d.Links != nil && r.RecordingKey != "" && !c.IsPurged {
		res.RecordingURL = d.Links.Link(c.ID.String())
	}
	return res, nil
}

// runEvidence gives res the analysis run's checked quotes, when its plan
// asked for them. Under require the run's output already holds null for
// every unverified field: what is not backed by the transcript is never
// pushed.
func runEvidence(res *crm.CallResult, run *store.Run, plan *agent.Plan) error {
	if len(run.Evidence) == 0 {
		return nil
	}
	if err := json.Unmarshal(run.Evidence, &res.Evidence); err != nil {
		return fmt.Errorf("decode the evidence of analysis run %d: %w", run.ID, err)
	}
	if res.Evidence == nil {
		res.Evidence = map[string]crm.Evidence{}
	}
	res.Unverified = run.Unverified
	res.EvidenceRequired = plan.Analysis != nil && plan.Analysis.Evidence == agent.EvidenceRequire
	return nil
}

// Redeliver makes the call's deliveries pending again (only the named
// integration's when name is set), re-enabling the integrations concerned,
// and creates deliveries for integrations added to the plan since. It
// returns the ids to enqueue. Replays keep their webhook-id: receivers that
// already processed a delivery recognise it.
func (d *Deliveries) Redeliver(ctx context.Context, tx pgx.Tx, callID uuid.UUID, name string) ([]string, error) {
	c, err := store.LockCall(ctx, tx, callID)
	if err != nil {
		return nil, err
	}
	if !c.Done {
		return nil, errors.New("the call is not finalized yet: its deliveries have not been created")
	}
	plan, _, err := store.CurrentPlan(ctx, tx, c.Record.AgentID)
	if err != nil {
		return nil, err
	}
	existing, err := store.CallDeliveries(ctx, tx, callID)
	if err != nil {
		return nil, err
	}
	latest := map[string]*store.Delivery{}
	for _, del := range existing { // newest first
		if latest[del.Integration] == nil {
			latest[del.Integration] = del
		}
	}
	var ids []string
	found := false
	for _, in := range plan.Integrations {
		if name != "" && in.Name != name {
			continue
		}
		found = true
		if _, err := store.EnableIntegration(ctx, tx, plan.ID, in.Name); err != nil {
			return nil, err
		}
		if del := latest[in.Name]; del != nil {
			if err := store.ResetDelivery(ctx, tx, del.ID); err != nil {
				return nil, err
			}
			ids = append(ids, del.ID)
			continue
		}
		del := &store.Delivery{ID: store.NewDeliveryID(), CallID: callID, AgentID: plan.ID, Integration: in.Name, Type: in.Type, Status: store.DeliveryPending}
		if err := store.CreateDelivery(ctx, tx, del); err != nil {
			return nil, err
		}
		ids = append(ids, del.ID)
	}
	if name != "" && !found {
		return nil, fmt.Errorf("agent %s has no integration named %q", plan.ID, name)
	}
	return ids, nil
}

func (d *Deliveries) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

func (d *Deliveries) jitter() func(time.Duration) time.Duration {
	if d.Jitter != nil {
		return d.Jitter
	}
	return crm.Jitter
}

func (d *Deliveries) logger() *slog.Logger {
	if d.Logger != nil {
		return d.Logger
	}
	return slog.Default()
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
