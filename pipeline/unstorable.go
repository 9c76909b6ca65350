package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/postcall/postcall/store"
)

// A run's answer is paid for once. Execute stores the model's validated
// answer with the requests that bought it (store.RecordAnswer) before the
// worker stores the result in the transaction that completes the job, so a
// retry after that transaction failed uses the stored answer
// (store.StoredAnswer) instead of asking again. When the database refuses a
// result for good (a retry would meet the same refusal), the run fails with
// the reason on record (Unstorable), its job completes and its call is
// finalized: the job is not retried at all.

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
		if err == nil {
			p.observeCosts(reqs)
		}
		return res, err
	}
	p.logRefused(ctx, run, pgErr)
	if err := p.recordRequests(ctx, db, run, reqs); err != nil {
		return nil, err
	}
	return unstorable(res, pgErr), nil
}

// Unstorable returns e as a failed run with the database's reason when err,
// from Store, is the database refusing e's result for good: the caller
// rolls back and stores that instead, in a new transaction that completes
// its job and finalizes the call. ok is false for any other error.
func (p *Service) Unstorable(ctx context.Context, e *Executed, err error) (failed *Executed, ok bool) {
	pgErr, refused := refusedForGood(err)
	if e.result == nil || !refused {
		return nil, false
	}
	p.logRefused(ctx, e.run, pgErr)
	return &Executed{run: e.run, result: unstorable(e.result, pgErr)}, true
}

// logRefused logs the refusal by its code and constraint: the message may
// quote the refused value.
func (p *Service) logRefused(ctx context.Context, run *store.Run, pgErr *pgconn.PgError) {
	p.logger().WarnContext(ctx, "run result refused by the database: the run fails without asking the model again",
		slog.String("call", run.CallID.String()), slog.Int64("run", run.ID), slog.String("kind", run.Kind),
		slog.String("sqlstate", pgErr.Code), slog.String("constraint", pgErr.ConstraintName))
}
