package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// DeliveryStatus is where a delivery is, as stored in deliveries.status.
type DeliveryStatus string

// Delivery statuses.
const (
	DeliveryPending   DeliveryStatus = "pending"
	DeliveryDelivered DeliveryStatus = "delivered"
	DeliveryFailed    DeliveryStatus = "failed"
	DeliveryDisabled  DeliveryStatus = "disabled"
)

// Delivery is one push of one call's results to one integration. Its ID is
// the webhook-id receivers deduplicate on: every retry and every replay of
// this delivery carries it.
type Delivery struct {
	ID             string
	CallID         uuid.UUID
	AgentID        string
	Integration    string
	Type           string
	Status         DeliveryStatus
	Attempts       int
	LastStatusCode *int
	LastError      *string
	ExternalID     *string
	NextAttemptAt  *time.Time
	DeliveredAt    *time.Time
	CreatedAt      time.Time
}

// NewDeliveryID returns a fresh delivery id in Standard Webhooks' msg_ form.
func NewDeliveryID() string {
	return "msg_" + uuid.Must(uuid.NewV7()).String()
}

// CreateDelivery adds a pending delivery (or a disabled one, for an
// integration that is disabled).
func CreateDelivery(ctx context.Context, db DBTX, d *Delivery) error {
	_, err := db.Exec(ctx, `
		INSERT INTO deliveries (id, call_id, agent_id, integration, type, status, last_error)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		d.ID, d.CallID, d.AgentID, d.Integration, d.Type, d.Status, d.LastError)
	if err != nil {
		return fmt.Errorf("create delivery of call %s to %s: %w", d.CallID, d.Integration, err)
	}
	return nil
}

const deliveryColumns = `id, call_id, agent_id, integration, type, status, attempts, last_status_code, last_error,
	external_id, next_attempt_at, delivered_at, created_at`

func scanDelivery(row pgx.Row) (*Delivery, error) {
	var d Delivery
	err := row.Scan(d.dest()...)
	return &d, err
}

// dest are the scan destinations of deliveryColumns.
func (d *Delivery) dest() []any {
	return []any{&d.ID, &d.CallID, &d.AgentID, &d.Integration, &d.Type, &d.Status, &d.Attempts, &d.LastStatusCode,
		&d.LastError, &d.ExternalID, &d.NextAttemptAt, &d.DeliveredAt, &d.CreatedAt}
}

// DeliveryWork is what an attempt of a delivery reads before it sends.
type DeliveryWork struct {
	Delivery *Delivery
	// Health is the integration's (zero when it never failed).
	Health Health
	// Call is the delivered call without its transcript, which no
	// integration is sent.
	Call *Call
	// PlanVersion is the agent's current plan version.
	PlanVersion int
}

// GetDeliveryWork returns a delivery with its integration's health, its
// call and the agent's current plan version, in one query.
func GetDeliveryWork(ctx context.Context, db DBTX, id string) (*DeliveryWork, error) {
	w := DeliveryWork{Delivery: &Delivery{}}
	extra := append(w.Delivery.dest(), &w.Health.FirstFailureAt, &w.Health.DisabledAt, &w.Health.DisabledReason, &w.PlanVersion)
	c, err := scanCall(db.QueryRow(ctx, `
		SELECT `+qualified(headColumns, "c")+`, `+qualified(deliveryColumns, "d")+`,
			h.first_failure_at, h.disabled_at, h.disabled_reason, a.current_version
		FROM deliveries d
		JOIN calls c ON c.id = d.call_id
		JOIN agents a ON a.id = c.agent_id
		LEFT JOIN integration_health h ON h.agent_id = d.agent_id AND h.integration = d.integration
		WHERE d.id = $1`, id), extra...)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("delivery %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read delivery %s: %w", id, err)
	}
	w.Call = c
	return &w, nil
}

// CallDeliveries returns the call's deliveries, newest first; those created
// together (one finalization) in the plan's order of integrations, as their
// time-ordered ids were made.
func CallDeliveries(ctx context.Context, db DBTX, callID uuid.UUID) ([]*Delivery, error) {
	rows, err := db.Query(ctx, `SELECT `+deliveryColumns+` FROM deliveries WHERE call_id = $1 ORDER BY created_at DESC, id`, callID)
	if err != nil {
		return nil, fmt.Errorf("list deliveries of call %s: %w", callID, err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*Delivery, error) { return scanDelivery(row) })
	if err != nil {
		return nil, fmt.Errorf("list deliveries of call %s: %w", callID, err)
	}
	return list, nil
}

// DeliveryAttempt is one HTTP attempt of a delivery.
type DeliveryAttempt struct {
	Attempt    int       `json:"attempt"`
	Outcome    string    `json:"outcome"`
	StatusCode *int      `json:"status_code"`
	LatencyMs  int64     `json:"latency_ms"`
	Error      *string   `json:"error"`
	At         time.Time `json:"at"`
}

// DeliveryAttempts returns a delivery's attempts, oldest first.
func DeliveryAttempts(ctx context.Context, db DBTX, deliveryID string) ([]DeliveryAttempt, error) {
	rows, err := db.Query(ctx, `
		SELECT attempt, outcome, status_code, latency_ms, error, created_at
		FROM delivery_attempts WHERE delivery_id = $1 ORDER BY id`, deliveryID)
	if err != nil {
		return nil, fmt.Errorf("list attempts of delivery %s: %w", deliveryID, err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (DeliveryAttempt, error) {
		var a DeliveryAttempt
		err := row.Scan(&a.Attempt, &a.Outcome, &a.StatusCode, &a.LatencyMs, &a.Error, &a.At)
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("list attempts of delivery %s: %w", deliveryID, err)
	}
	return list, nil
}

// AttemptRecord is what one attempt changes.
type AttemptRecord struct {
	Outcome    string
	StatusCode int // 0 when no response arrived
	Latency    time.Duration
	Error      string
	ExternalID string
	// Status is the delivery's status after the attempt.
	Status DeliveryStatus
	// NextAttemptAt is when a retry is due, for a pending delivery.
	NextAttemptAt *time.Time
}

// RecordAttempt logs one attempt and updates its delivery. It returns the
// attempt's number.
func RecordAttempt(ctx context.Context, db DBTX, d *Delivery, a AttemptRecord) (int, error) {
	var status *int
	if a.StatusCode != 0 {
		status = &a.StatusCode
	}
	// One statement: the delivery's new state and its log row are written
	// together, in one round trip.
	var n int
	err := db.QueryRow(ctx, `
		WITH updated AS (
			UPDATE deliveries SET attempts = attempts + 1, status = $2, last_status_code = $3, last_error = $4,
				external_id = COALESCE($5, external_id), next_attempt_at = $6,
				delivered_at = CASE WHEN $2 = 'delivered' THEN now() ELSE delivered_at END, updated_at = now()
			WHERE id = $1 RETURNING id, call_id, attempts
		), logged AS (
			INSERT INTO delivery_attempts (delivery_id, call_id, attempt, outcome, status_code, latency_ms, error)
			SELECT id, call_id, attempts, $7, $3, $8, $4 FROM updated
		)
		SELECT attempts FROM updated`,
		d.ID, a.Status, status, null(a.Error), null(a.ExternalID), a.NextAttemptAt, a.Outcome, a.Latency.Milliseconds()).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("record attempt of delivery %s: %w", d.ID, err)
	}
	return n, nil
}

// ResetDelivery makes a finished delivery pending again for a replay,
// keeping its id (receivers deduplicate on it) and its attempt log.
func ResetDelivery(ctx context.Context, db DBTX, id string) error {
	_, err := db.Exec(ctx, `UPDATE deliveries SET status = 'pending', next_attempt_at = NULL, updated_at = now() WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("reset delivery %s: %w", id, err)
	}
	return nil
}

// Health is one integration's failure record.
type Health struct {
	FirstFailureAt *time.Time
	DisabledAt     *time.Time
	DisabledReason *string
}

// IntegrationHealth returns an integration's health (zero when it never
// failed).
func IntegrationHealth(ctx context.Context, db DBTX, agentID, integration string) (Health, error) {
	var h Health
	err := db.QueryRow(ctx, `
		SELECT first_failure_at, disabled_at, disabled_reason FROM integration_health
		WHERE agent_id = $1 AND integration = $2`, agentID, integration).Scan(&h.FirstFailureAt, &h.DisabledAt, &h.DisabledReason)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return h, fmt.Errorf("read health of %s/%s: %w", agentID, integration, err)
	}
	return h, nil
}

// RecordIntegrationFailure notes a failure at now and returns when the
// current run of failures began.
func RecordIntegrationFailure(ctx context.Context, db DBTX, agentID, integration string, now time.Time) (time.Time, error) {
	var first time.Time
	err := db.QueryRow(ctx, `
		INSERT INTO integration_health (agent_id, integration, first_failure_at) VALUES ($1, $2, $3)
		ON CONFLICT (agent_id, integration) DO UPDATE
			SET first_failure_at = COALESCE(integration_health.first_failure_at, $3), updated_at = now()
		RETURNING first_failure_at`, agentID, integration, now).Scan(&first)
	if err != nil {
		return first, fmt.Errorf("record failure of %s/%s: %w", agentID, integration, err)
	}
	return first, nil
}

// RecordIntegrationSuccess ends a run of failures.
func RecordIntegrationSuccess(ctx context.Context, db DBTX, agentID, integration string) error {
	_, err := db.Exec(ctx, `
		UPDATE integration_health SET first_failure_at = NULL, updated_at = now()
		WHERE agent_id = $1 AND integration = $2 AND first_failure_at IS NOT NULL`, agentID, integration)
	if err != nil {
		return fmt.Errorf("record success of %s/%s: %w", agentID, integration, err)
	}
	return nil
}

// DisableIntegration stops deliveries to an integration until it is enabled
// again.
func DisableIntegration(ctx context.Context, db DBTX, agentID, integration, reason string, now time.Time) error {
	_, err := db.Exec(ctx, `
		INSERT INTO integration_health (agent_id, integration, disabled_at, disabled_reason) VALUES ($1, $2, $3, $4)
		ON CONFLICT (agent_id, integration) DO UPDATE
			SET disabled_at = COALESCE(integration_health.disabled_at, $3),
			    disabled_reason = COALESCE(integration_health.disabled_reason, $4), updated_at = now()`,
		agentID, integration, now, reason)
	if err != nil {
		return fmt.Errorf("disable %s/%s: %w", agentID, integration, err)
	}
	return nil
}

// EnableIntegration clears an integration's disablement and failures. It
// reports whether the integration was disabled.
func EnableIntegration(ctx context.Context, db DBTX, agentID, integration string) (bool, error) {
	tag, err := db.Exec(ctx, `
		UPDATE integration_health SET disabled_at = NULL, disabled_reason = NULL, first_failure_at = NULL, updated_at = now()
		WHERE agent_id = $1 AND integration = $2 AND disabled_at IS NOT NULL`, agentID, integration)
	if err != nil {
		return false, fmt.Errorf("enable %s/%s: %w", agentID, integration, err)
	}
	return tag.RowsAffected() == 1, nil
}
