package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/postcall/postcall/store"
)

// A run's answer is paid for once. Execute stores the model's validated
// answer with the requests that bought it (store.RecordAnswer) before the
// worker stores the result in the transaction that completes the job, so a
// retry after that transaction failed uses the stored answer
// (store.StoredAnswer) instead of asking again. When the database refuses a
// result for good (a retry would meet the same refusal), the run fails with
// the reason on record (storeOrFail), its job completes and its call is
// finalized: the job is not retried at all. Store does that itself, in a
// savepoint, so that its callers (the run worker) need not know.

// refusedForGood returns the database's error when err is a refusal of the
// data itself: a data exception (SQLSTATE class 22, e.g. a number out of
// range, a NUL in text) or an integrity constraint violation (class 23).
func refusedForGood(err error) (*pgconn.PgError, bool) {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || len(pgErr.Code) != 5 {
		return nil, false
	}
	class := pgErr.Code[:2]
	return pgErr, class == "22" || class == "23"
}

// unstorable is the failed result that replaces res when the database
// refused it for good.
func unstorable(res *store.RunResult, pgErr *pgconn.PgError) *store.RunResult {
	return &store.RunResult{
		Status: store.RunFailed, Model: res.Model, Demo: res.Demo, Latency: res.Latency,
		Error: fmt.Sprintf("the result could not be stored: %s (SQLSTATE %s)", pgErr.Message, pgErr.Code),
	}
}

// recordAnswer records the requests and the successful answer res. When
// the database refuses the answer for good, it records the requests alone
// and returns the failed result to store instead.
func (p *Service) recordAnswer(ctx context.Context, db store.DBTX, run *store.Run, reqs []store.LLMRequest, res *store.RunResult) (*store.RunResult, error) {
	err := store.RecordAnswer(ctx, db, run, reqs, *res)
	pgErr, refused := refusedForGood(err)
	if !refused {
		return res, err
	}
	p.logRefused(ctx, run, pgErr)
	if err := store.RecordRequests(ctx, db, run, reqs); err != nil {
		return nil, err
	}
	return unstorable(res, pgErr), nil
}

// storeOrFail stores res as storeResult does, after a savepoint in tx.
// When the database refuses it for good, tx is rolled back to the savepoint
// (the caller's earlier statements, its job's completion among them, stand)
// and the failed result with the database's reason is stored instead. The
// savepoint is never released: the commit of tx ends it, and the hot path
// pays one statement for it, not two.
func (p *Service) storeOrFail(ctx context.Context, tx pgx.Tx, run *store.Run, res *store.RunResult) (Jobs, error) {
	if _, err := tx.Exec(ctx, "SAVEPOINT "+storeSavepoint); err != nil {
		return Jobs{}, fmt.Errorf("store %s run %d: savepoint: %w", run.Kind, run.ID, err)
	}
	jobs, err := p.storeResult(ctx, tx, run, res)
	pgErr, refused := refusedForGood(err)
	if !refused {
		return jobs, err
	}
	if _, err := tx.Exec(ctx, "ROLLBACK TO SAVEPOINT "+storeSavepoint); err != nil {
		return Jobs{}, fmt.Errorf("store %s run %d: roll back to savepoint: %w", run.Kind, run.ID, err)
	}
	p.logRefused(ctx, run, pgErr)
	return p.storeResult(ctx, tx, run, unstorable(res, pgErr))
}

// storeSavepoint is the savepoint storeOrFail rolls back to.
const storeSavepoint = "postcall_store_result"

// logRefused logs the refusal by its code and constraint: the message may
// quote the refused value.
func (p *Service) logRefused(ctx context.Context, run *store.Run, pgErr *pgconn.PgError) {
	p.logger().WarnContext(ctx, "run result refused by the database: the run fails without asking the model again",
		slog.String("call", run.CallID.String()), slog.Int64("run", run.ID), slog.String("kind", run.Kind),
		slog.String("sqlstate", pgErr.Code), slog.String("constraint", pgErr.ConstraintName))
}
