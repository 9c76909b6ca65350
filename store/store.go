// Package store is postcall's PostgreSQL store: agents and their versioned
// plans, calls, analysis and QC runs, the LLM requests they paid for,
// deliveries and their attempts, bulk reanalysis cursors, and the list
// queries. Every function takes a DBTX, so that a caller can put a write and
// the River job it enqueues in one transaction. SQL and the typed states of
// stored rows belong here; decisions about them belong in pipeline or
// retention, and the JSON a call is shown as in calldoc.
package store

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// DBTX is what the store needs from a pool, a connection or a transaction.
type DBTX interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// ErrNotFound is returned when a call or agent does not exist (or a call was
// hard-deleted).
var ErrNotFound = errors.New("not found")
