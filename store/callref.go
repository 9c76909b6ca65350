package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
)

// A CALL reference (the CLI's CALL, the API's {id}) is postcall's id or the
// platform's call_id. The rule, wherever a reference is resolved: a
// reference that is a UUID equal to a call's id names that call (postcall's
// id wins); anything else is a call_id. So that no call is ever hidden by
// that rule, a record whose call_id equals another call's id is refused
// (ErrCallIDIsAnID). A reference holding NUL or invalid UTF-8 names no call:
// ingest refuses such call_ids.

// ErrCallIDIsAnID is returned by InsertCall for a call_id that is the id
// postcall gave another call.
var ErrCallIDIsAnID = errors.New("is the id postcall gave another call: a call_id must not equal a postcall id")

// callRefWhere is the WHERE clause (with ORDER BY and LIMIT) that finds the
// call ref names, and its arguments; ok is false when ref can name no call.
func callRefWhere(ref string) (where string, args []any, ok bool) {
	if !IsText(ref) {
		return "", nil, false
	}
	if id, err := uuid.Parse(ref); err == nil {
		return ` WHERE id = $1 OR call_id = $2 ORDER BY id = $1 DESC LIMIT 1`, []any{id, ref}, true
	}
	return ` WHERE call_id = $1`, []any{ref}, true
}

// checkCallID refuses a call_id equal to an existing call's id.
func checkCallID(ctx context.Context, db DBTX, callID string) error {
	id, err := uuid.Parse(callID)
	if err != nil {
		return nil
	}
	var taken bool
	if err := db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM calls WHERE id = $1 AND call_id <> $2)`, id, callID).Scan(&taken); err != nil {
		return fmt.Errorf("check call_id %s: %w", callID, err)
	}
	if taken {
		return fmt.Errorf("call_id %q %w", callID, ErrCallIDIsAnID)
	}
	return nil
}
