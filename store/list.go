package store

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/postcall/postcall/call"
)

// Page sizes of ListCalls.
const (
	// DefaultListLimit is the page size when ListFilter.Limit is 0.
	DefaultListLimit = 50
	// MaxListLimit is the largest page ListCalls returns.
	MaxListLimit = 200
	// MaxSearchLength is the longest ListFilter.Search accepted, in
	// characters.
	MaxSearchLength = 200
)

// ListFilter selects calls for ListCalls. The zero value lists every call
// that is not soft-deleted, newest first, DefaultListLimit at a time.
type ListFilter struct {
	// Done keeps only calls whose post-call processing has (true) or has not
	// (false) finished. Default nil: both.
	Done *bool
	// From keeps calls created at or after it. Default zero: no lower
	// bound.
	From time.Time
	// To keeps calls created before it (exclusive, so that consecutive
	// windows never share a call). Default zero: no upper bound.
	To time.Time
	// PhoneNumber keeps calls of this phone number, compared on the
	// normalised key (call.NormalizePhone), so "+1 (415) 555-0100" finds
	// "+14155550100"; a value that is not a plausible number ("anonymous")
	// is compared exactly. Purged calls never match: their number is erased.
	// Default "": any number.
	PhoneNumber string
	// Search keeps calls whose customer name, phone number or summary
	// contains it, ignoring case. A number with a normalised key
	// (call.NormalizePhone) is matched by its digits: a term of 3 to 15
	// digits and phone punctuation finds the numbers whose digits contain
	// the term's ("555-0100" and "5550100" find "+14155550100"); a number
	// without a key ("anonymous") is matched as text. Purged calls match on
	// their summary only. Control characters are ignored. Default "": no
	// search.
	Search string
	// AgentID keeps the calls of one agent. Default "": every agent.
	AgentID string
	// IncludeDeleted lists soft-deleted calls too. Default false.
	IncludeDeleted bool
	// Limit is the page size, 1 to MaxListLimit. Default 0:
	// DefaultListLimit.
	Limit int
	// After continues a listing after this cursor (ListPage.Next). Default
	// nil: the first page.
	After *ListCursor
}

// ListCursor is a position in a listing ordered by created_at and id, both
// descending. Callers pass it around as an opaque string (String,
// ParseListCursor).
type ListCursor struct {
	CreatedAt time.Time
	ID        uuid.UUID
}

// cursorVersion leads an encoded cursor so that its format can change.
const cursorVersion = 1

// String encodes the cursor as URL-safe base64 of a version byte, the
// creation time in Unix microseconds (PostgreSQL's precision) and the id.
func (c ListCursor) String() string {
	b := make([]byte, 0, 25)
	b = append(b, cursorVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(c.CreatedAt.UnixMicro()))
	b = append(b, c.ID[:]...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// ErrInvalidCursor is returned by ParseListCursor for a string String did
// not produce.
var ErrInvalidCursor = errors.New("invalid cursor: pass next_cursor of the previous page unchanged")

// ParseListCursor decodes a cursor made by ListCursor.String.
func ParseListCursor(s string) (ListCursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != 25 || b[0] != cursorVersion {
		return ListCursor{}, ErrInvalidCursor
	}
	id, err := uuid.FromBytes(b[9:])
	if err != nil {
		return ListCursor{}, ErrInvalidCursor
	}
	micros := int64(binary.BigEndian.Uint64(b[1:9]))
	return ListCursor{CreatedAt: time.UnixMicro(micros).UTC(), ID: id}, nil
}

// ListPage is one page of a listing.
type ListPage struct {
	Calls []ListItem
	// Next continues the listing; nil on the last page.
	Next *ListCursor
}

// ListItem is a call as a listing shows it (seed 004's list view): the
// basic facts and the outcome, without transcript, recording or QC score,
// which only the call document has. Personal data of a purged call
// (phone_number, customer_name) is null. The call document embeds it, so
// that a key of both is written, and derived (Call.ListItem), once.
type ListItem struct {
	ID                uuid.UUID  `json:"id"`
	CallID            string     `json:"call_id"`
	AgentID           string     `json:"agent_id"`
	Direction         *string    `json:"direction"`
	Status            *string    `json:"status"`
	EndedReason       *string    `json:"ended_reason"`
	EndedReasonLabel  string     `json:"ended_reason_label"`
	DisconnectedBy    *string    `json:"disconnected_by"`
	CustomerName      *string    `json:"customer_name"`
	CustomerRequest   *string    `json:"customer_request"`
	PhoneNumber       *string    `json:"phone_number"`
	Duration          *float64   `json:"duration"`
	StartedAt         *time.Time `json:"started_at"`
	EndedAt           time.Time  `json:"ended_at"`
	State             CallState  `json:"state"`
	Done              bool       `json:"done"`
	GeneralSuccess    *bool      `json:"general_success"`
	Disposition       *string    `json:"disposition"`
	DispositionSource *string    `json:"disposition_source"`
	DispositionReason *string    `json:"disposition_reason"`
	CallSummary       *string    `json:"call_summary"`
	// FinalScore is the QC score, which the console's list shows; seed
	// 004's list has none, so the API's list item leaves it out (the call
	// document has final_score).
	FinalScore *int       `json:"-"`
	IsTest     bool       `json:"is_test"`
	IsPurged   bool       `json:"is_purged"`
	PurgedAt   *time.Time `json:"purged_at"`
	DeletedAt  *time.Time `json:"deleted_at"`
	CreatedAt  time.Time  `json:"created_at"`
	UpdatedAt  time.Time  `json:"updated_at"`
}

// ListItem is c as a listing shows it: the record's facts, status,
// disconnected_by and the reason's label derived from them, and the
// outcome. Purged personal data is null because the purge nulled it in c.
func (c *Call) ListItem() ListItem {
	r := &c.Record
	return ListItem{
		ID: c.ID, CallID: r.CallID, AgentID: r.AgentID, Direction: null(r.Direction),
		Status: null(call.DeriveStatus(r)), EndedReason: null(r.EndedReason),
		EndedReasonLabel: call.LookupReason(r.EndedReason).Label, DisconnectedBy: null(call.DisconnectedBy(r)),
		CustomerName: null(r.CustomerName), CustomerRequest: null(r.CustomerRequest), PhoneNumber: null(r.PhoneNumber),
		Duration: r.Duration, StartedAt: r.StartedAt, EndedAt: r.EndedAt,
		State: c.State, Done: c.Done, GeneralSuccess: c.GeneralSuccess, Disposition: c.Disposition,
		DispositionSource: c.DispositionSource, DispositionReason: c.AutoReason, CallSummary: c.CallSummary, FinalScore: c.FinalScore,
		IsTest: r.IsTest, IsPurged: c.IsPurged, PurgedAt: c.PurgedAt, DeletedAt: c.DeletedAt,
		CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt,
	}
}

// searchExpr is what ListFilter.Search is matched against as text. It must
// stay identical to the expression of the index calls_search_trgm_idx
// (migrations/sql/014_phone_digits_search.sql), or searches stop using that
// index. A number with a normalised key is left out: it is searched by its
// digits (phoneDigitsExpr), since the trigrams of digits are common to most
// numbers and would make the trigram index return nearly every call. The
// newlines keep a term from matching across two fields: Search never holds
// one.
const searchExpr = `(coalesce(customer_name, '') || E'\n' ||
	CASE WHEN phone_key IS NULL THEN coalesce(phone_number, '') ELSE '' END || E'\n' ||
	coalesce(call_summary, ''))`

// phoneDigitsExpr is every run of 3 or more consecutive digits of the
// normalised number, the expression of the index calls_phone_digits_idx
// (migration 014), which it must stay identical to. "Contains these digits"
// is then an exact index lookup, phoneDigitsExpr @> ARRAY[digits].
const phoneDigitsExpr = `phone_digit_substrings(phone_key)`

// listColumns are the ListItem's columns. Personal data of purged calls
// is nulled here too, whatever the purge left in the row. user_spoke is
// only needed to derive the status of a record that has none.
const listColumns = `id, call_id, agent_id, direction, status, ended_reason, disconnected_by,
	CASE WHEN is_purged THEN NULL ELSE customer_name END, customer_request,
	CASE WHEN is_purged THEN NULL ELSE phone_number END,
	duration, talk_ms, started_at, answered_at, ended_at,
	status IS NULL AND EXISTS (SELECT 1 FROM jsonb_array_elements(transcript) AS t
		WHERE t->>'role' = 'user' AND t->>'text' ~ '\S'),
	state, done, general_success, disposition, disposition_source, auto_reason, call_summary, final_score, is_test,
	is_purged, purged_at, deleted_at, created_at, updated_at`

// ListCalls returns one page of calls matching f, newest first (created_at,
// then id, descending). Paging by cursor never returns a call twice or skips
// one, also while calls are added: a call created after the first page was
// read sorts before the cursor and shows up only in a new listing.
func ListCalls(ctx context.Context, db DBTX, f ListFilter) (*ListPage, error) {
	sql, args, limit, err := listQuery(f)
	if err != nil {
		return nil, fmt.Errorf("list calls: %w", err)
	}
	rows, err := db.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("list calls: %w", err)
	}
	items, err := pgx.CollectRows(rows, scanListItem)
	if err != nil {
		return nil, fmt.Errorf("list calls: %w", err)
	}
	page := &ListPage{Calls: items}
	if len(items) > limit {
		page.Calls = items[:limit]
		last := page.Calls[limit-1]
		page.Next = &ListCursor{CreatedAt: last.CreatedAt, ID: last.ID}
	}
	return page, nil
}

// listQuery builds ListCalls' statement. It fetches one row more than the
// page size, to know whether another page follows.
func listQuery(f ListFilter) (sql string, args []any, limit int, err error) {
	limit = f.Limit
	switch {
	case limit == 0:
		limit = DefaultListLimit
	case limit < 0 || limit > MaxListLimit:
		return "", nil, 0, fmt.Errorf("limit %d is not between 1 and %d", limit, MaxListLimit)
	}
	var where []string
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if !f.IncludeDeleted {
		where = append(where, "deleted_at IS NULL")
	}
	switch {
	case f.Done == nil:
	case *f.Done:
		where = append(where, "done")
	default:
		// Written as the predicate of calls_not_done_created_at_idx, so that
		// even a generic plan can use that index.
		where = append(where, "NOT done")
	}
	if !f.From.IsZero() {
		where = append(where, "created_at >= "+arg(f.From))
	}
	if !f.To.IsZero() {
		where = append(where, "created_at < "+arg(f.To))
	}
	if f.AgentID != "" {
		where = append(where, "agent_id = "+arg(f.AgentID))
	}
	if f.PhoneNumber != "" {
		if key := call.NormalizePhone(f.PhoneNumber); key != "" {
			where = append(where, "phone_key = "+arg(key)+" AND NOT is_purged")
		} else {
			where = append(where, "phone_number = "+arg(f.PhoneNumber)+" AND NOT is_purged")
		}
	}
	if term := cleanSearch(f.Search); term != "" {
		if len([]rune(term)) > MaxSearchLength {
			return "", nil, 0, fmt.Errorf("search is longer than %d characters", MaxSearchLength)
		}
		pattern := arg("%" + escapeLike(term) + "%")
		match := searchExpr + " ILIKE " + pattern
		if digits, ok := phoneDigits(term); ok {
			match = "(" + match + " OR " + phoneDigitsExpr + " @> ARRAY[" + arg(digits) + "::text])"
		}
		// A purged call must not be found by its number or name any more,
		// only by its summary. The purge nulls them (phone_key included);
		// this holds even for a row it left half-done.
		where = append(where, match+" AND (NOT is_purged OR coalesce(call_summary, '') ILIKE "+pattern+")")
	}
	if f.After != nil {
		where = append(where, "(created_at, id) < ("+arg(f.After.CreatedAt)+", "+arg(f.After.ID)+")")
	}
	sql = `SELECT ` + listColumns + ` FROM calls`
	if len(where) > 0 {
		sql += ` WHERE ` + strings.Join(where, " AND ")
	}
	sql += ` ORDER BY created_at DESC, id DESC LIMIT ` + arg(limit+1)
	return sql, args, limit, nil
}

// GetListItem returns one call as a listing shows it.
func GetListItem(ctx context.Context, db DBTX, id uuid.UUID) (*ListItem, error) {
	rows, err := db.Query(ctx, `SELECT `+listColumns+` FROM calls WHERE id = $1`, id)
	if err != nil {
		return nil, fmt.Errorf("read call %s: %w", id, err)
	}
	item, err := pgx.CollectExactlyOneRow(rows, scanListItem)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("call %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read call %s: %w", id, err)
	}
	return &item, nil
}

// scanListItem scans a row of listColumns into the fields of a Call that
// Call.ListItem reads, so that the list derives every key as the call
// document does. The transcript is not read: only whether the customer
// spoke matters to DeriveStatus, and one placeholder turn stands for that.
func scanListItem(row pgx.CollectableRow) (ListItem, error) {
	var (
		c                                              Call
		r                                              = &c.Record
		direction, status, endedReason, disconnectedBy *string
		customerName, customerRequest, phoneNumber     *string
		userSpoke                                      bool
	)
	err := row.Scan(&c.ID, &r.CallID, &r.AgentID, &direction, &status, &endedReason, &disconnectedBy,
		&customerName, &customerRequest, &phoneNumber,
		&r.Duration, &r.TalkMs, &r.StartedAt, &r.AnsweredAt, &r.EndedAt, &userSpoke,
		&c.State, &c.Done, &c.GeneralSuccess, &c.Disposition, &c.DispositionSource, &c.AutoReason,
		&c.CallSummary, &c.FinalScore, &r.IsTest, &c.IsPurged, &c.PurgedAt, &c.DeletedAt, &c.CreatedAt, &c.UpdatedAt)
	if err != nil {
		return ListItem{}, err
	}
	r.Direction, r.Status, r.EndedReason, r.DisconnectedBy = deref(direction), deref(status), deref(endedReason), deref(disconnectedBy)
	r.CustomerName, r.CustomerRequest, r.PhoneNumber = deref(customerName), deref(customerRequest), deref(phoneNumber)
	if userSpoke {
		r.Transcript = []call.Turn{{Role: call.RoleUser, Text: "-"}}
	}
	return c.ListItem(), nil
}

// cleanSearch trims a search term and drops control characters, so that
// it cannot match across the newlines separating searchExpr's fields.
func cleanSearch(s string) string {
	return strings.TrimSpace(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s))
}

// escapeLike escapes LIKE's wildcards and its escape character, so that a
// term matches literally.
func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// phoneDigits returns the digits of a term that looks like (part of) a
// phone number: 3 to 15 digits (a normalised number has at most 15) and
// nothing but digits and the punctuation NormalizePhone ignores, so that
// "555-000-7", "(415) 555" and "5550100" are looked up by digits.
func phoneDigits(term string) (digits string, ok bool) {
	var b strings.Builder
	for _, r := range term {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case strings.ContainsRune("+-.()/ \t", r):
		default:
			return "", false
		}
	}
	digits = b.String()
	return digits, len(digits) >= 3 && len(digits) <= 15
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
