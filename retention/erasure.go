package retention

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/postcall/postcall/call"
	"github.com/postcall/postcall/store"
)

// ErrInvalidPhone is returned by ErasePhone for a value that is not a phone
// number.
var ErrInvalidPhone = errors.New("not a phone number (want E.164, e.g. +15550100001)")

// erasurePolicy is what an erasure records as its policy: how it selected
// calls, never the phone number it was given.
type erasurePolicy struct {
	Selector string `json:"selector"` // "call" or "phone"
}

// EraseCall purges the call named by ref (postcall's id or the platform's
// call_id) now, whatever its age: an erasure request. A call on legal hold,
// its own or its agent's, is not purged: the hold wins (the data is kept to
// establish or defend legal claims) and the report counts it in
// SkippedHold. A call purged before reports AlreadyPurged. An unknown call
// returns an error wrapping store.ErrNotFound and records no run.
func (s *Service) EraseCall(ctx context.Context, ref string, opts RunOptions) (*Report, error) {
	found, err := store.GetCall(ctx, s.DB, ref)
	if err != nil {
		return nil, err
	}
	r, err := s.startRun(ctx, KindErasure, triggerOr(opts.Trigger, TriggerRequest), opts, erasurePolicy{Selector: "call"})
	if err != nil {
		return nil, err
	}
	var alreadyPurged bool
	// erase purges the call in tx, or only counts in a dry run (tx nil),
	// and returns the recording outbox batch (0: none).
	erase := func(db store.DBTX, tx pgx.Tx) (int64, error) {
		c, held, err := selectErasureCall(ctx, db, found.ID, tx != nil)
		switch {
		case err != nil:
			return 0, err
		case c.isPurged:
			alreadyPurged = true
			return 0, nil
		case held:
			return 0, addCounts(ctx, db, r.id, counts{skippedHold: 1})
		case tx == nil:
			return 0, addCounts(ctx, db, r.id, counts{purged: 1, objectsQueued: withRecording([]candidate{c})})
		}
		return s.purgeCalls(ctx, tx, r.id, ReasonRequest, []candidate{c})
	}
	var outbox int64
	if opts.DryRun {
		_, err = erase(s.DB, nil)
	} else {
		err = s.inBatchTx(ctx, r, func(tx pgx.Tx) error {
			var err error
			alreadyPurged = false
			outbox, err = erase(tx, tx)
			return err
		})
	}
	if err == nil && outbox != 0 {
		r.batches = append(r.batches, outbox)
	}
	rep, err := s.finishRun(ctx, r, err)
	if rep != nil {
		rep.AlreadyPurged = alreadyPurged
	}
	return rep, err
}

// selectErasureCall reads the call as a candidate, locked for its purge
// when lock is set, and whether it is on hold.
func selectErasureCall(ctx context.Context, db store.DBTX, id uuid.UUID, lock bool) (candidate, bool, error) {
	list, err := selectCandidates(ctx, db, "c.ended_at", `
		WHERE c.id = $1
		  AND NOT EXISTS (SELECT 1 FROM agents a WHERE a.id = c.agent_id AND a.legal_hold_at IS NOT NULL)
		  AND c.legal_hold_at IS NULL`, lockClause(lock, purgeLock), id)
	if err != nil {
		return candidate{}, false, err
	}
	if len(list) == 1 {
		return list[0], false, nil
	}
	// Not selected: on hold, or gone since it was looked up.
	held, err := selectCandidates(ctx, db, "c.ended_at", `WHERE c.id = $1`, lockClause(lock, purgeLock), id)
	if err != nil {
		return candidate{}, false, err
	}
	if len(held) == 0 {
		return candidate{}, false, fmt.Errorf("call %s: %w", id, store.ErrNotFound)
	}
	return held[0], true, nil
}

// ErasePhone purges, now, every call whose phone_number normalises to the
// same E.164 number as phone: an erasure request. Calls on legal hold are
// counted in SkippedHold, not purged. The number itself is recorded
// nowhere: the run's policy only says a phone number selected the calls.
func (s *Service) ErasePhone(ctx context.Context, phone string, opts RunOptions) (*Report, error) {
	key := call.NormalizePhone(phone)
	if key == "" {
		return nil, fmt.Errorf("erase by phone: %w", ErrInvalidPhone)
	}
	r, err := s.startRun(ctx, KindErasure, triggerOr(opts.Trigger, TriggerRequest), opts, erasurePolicy{Selector: "phone"})
	if err != nil {
		return nil, err
	}
	_, runErr := s.runSweep(ctx, r, sweep{
		selectBatch: func(ctx context.Context, db store.DBTX, after keyset, limit int, lock bool) ([]candidate, error) {
			return selectCandidates(ctx, db, "c.ended_at", `
				WHERE c.phone_key = $1 AND NOT c.is_purged AND c.legal_hold_at IS NULL
				  AND NOT EXISTS (SELECT 1 FROM agents a WHERE a.id = c.agent_id AND a.legal_hold_at IS NOT NULL)
				  AND c.id > $2
				ORDER BY c.id LIMIT $3`, lockClause(lock, purgeLock), key, after.id, limit)
		},
		apply: func(ctx context.Context, tx pgx.Tx, batch []candidate) (int64, error) {
			return s.purgeCalls(ctx, tx, r.id, ReasonRequest, batch)
		},
		dryCounts: func(batch []candidate) counts {
			return counts{purged: len(batch), objectsQueued: withRecording(batch)}
		},
	})
	if runErr == nil && !r.partial {
		var held int
		runErr = s.DB.QueryRow(ctx, `
			SELECT count(*) FROM calls c JOIN agents a ON a.id = c.agent_id
			WHERE c.phone_key = $1 AND NOT c.is_purged AND (c.legal_hold_at IS NOT NULL OR a.legal_hold_at IS NOT NULL)`,
			key).Scan(&held)
		if runErr == nil && held > 0 {
			runErr = addCounts(ctx, s.DB, r.id, counts{skippedHold: held})
		}
	}
	return s.finishRun(ctx, r, runErr)
}
