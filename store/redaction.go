package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/postcall/postcall/redact"
)

// InsertRedaction records what ingest redacted from a new call's
// transcript. Nil counts (the plan redacts nothing) store nothing.
func InsertRedaction(ctx context.Context, db DBTX, callID uuid.UUID, counts redact.Counts) error {
	if counts == nil {
		return nil
	}
	b, err := json.Marshal(counts)
	if err != nil {
		return fmt.Errorf("encode redaction counts of call %s: %w", callID, err)
	}
	if _, err := db.Exec(ctx, `INSERT INTO call_redactions (call_id, counts) VALUES ($1, $2)`, callID, b); err != nil {
		return fmt.Errorf("store redaction counts of call %s: %w", callID, err)
	}
	return nil
}

// CallRedaction returns the redaction counts of a call, nil when its plan
// redacted nothing.
func CallRedaction(ctx context.Context, db DBTX, callID uuid.UUID) (redact.Counts, error) {
	var raw []byte
	err := db.QueryRow(ctx, `SELECT counts FROM call_redactions WHERE call_id = $1`, callID).Scan(&raw)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("read redaction counts of call %s: %w", callID, err)
	}
	var counts redact.Counts
	if err := json.Unmarshal(raw, &counts); err != nil {
		return nil, fmt.Errorf("decode redaction counts of call %s: %w", callID, err)
	}
	return counts, nil
}
