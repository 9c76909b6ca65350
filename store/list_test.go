package store

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/agent"
	"github.com/postcall/postcall/call"
	"github.com/postcall/postcall/internal/dbtest"
)

type listBundle struct {
	tx  pgx.Tx
	seq int
}

// setupList gives a test a rolled-back transaction holding the agent
// "sales".
func setupList(t *testing.T) *listBundle {
	t.Helper()
	b := &listBundle{tx: dbtest.Tx(t)}
	plans, err := agent.ParsePlans([]byte("id: sales\n"))
	require.NoError(t, err)
	_, _, err = ApplyPlan(context.Background(), b.tx, &plans[0])
	require.NoError(t, err)
	return b
}

// insert stores a call created at the given time and returns its id.
func (b *listBundle) insert(t *testing.T, createdAt time.Time, mutate func(*call.Record)) uuid.UUID {
	t.Helper()
	ctx := context.Background()
	b.seq++
	rec := &call.Record{
		CallID: fmt.Sprintf("list-%d", b.seq), AgentID: "sales", EndedReason: "customer-ended-call",
		EndedAt: createdAt, PhoneNumber: "+15550100001",
	}
	if mutate != nil {
		mutate(rec)
	}
	id, inserted, err := InsertCall(ctx, b.tx, NewCall{Record: rec, PhoneKey: call.NormalizePhone(rec.PhoneNumber)})
	require.NoError(t, err)
	require.True(t, inserted)
	_, err = b.tx.Exec(ctx, `UPDATE calls SET created_at = $2 WHERE id = $1`, id, createdAt)
	require.NoError(t, err)
	return id
}

func TestListCallsPagesWithoutGapsOrDuplicates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupList(t)
	base := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	type key struct {
		at time.Time
		id uuid.UUID
	}
	var all []key
	for i := range 120 {
		// Groups of seven share a timestamp: the id must break the ties.
		at := base.Add(time.Duration(i/7) * time.Second)
		all = append(all, key{at, b.insert(t, at, nil)})
	}
	slices.SortFunc(all, func(x, y key) int {
		if c := y.at.Compare(x.at); c != 0 {
			return c
		}
		return strings.Compare(y.id.String(), x.id.String())
	})

	var got []uuid.UUID
	var sizes []int
	f := ListFilter{Limit: 50}
	for range 10 {
		page, err := ListCalls(ctx, b.tx, f)
		require.NoError(t, err)
		sizes = append(sizes, len(page.Calls))
		for _, c := range page.Calls {
			got = append(got, c.ID)
		}
		if len(got) == 50 {
			// A call arriving between pages sorts before the cursor: it
			// must not show up on a later page.
			b.insert(t, base.Add(time.Hour), nil)
		}
		if page.Next == nil {
			break
		}
		// The cursor goes through its string form, as clients use it.
		cur, err := ParseListCursor(page.Next.String())
		require.NoError(t, err)
		f.After = &cur
	}
	require.Equal(t, []int{50, 50, 20}, sizes)
	want := make([]uuid.UUID, len(all))
	for i, k := range all {
		want[i] = k.id
	}
	require.Equal(t, want, got, "every call once, newest first, ties by id")
}

func TestListCallsLastFullPageHasNoCursor(t *testing.T) {
	t.Parallel()
	b := setupList(t)
	for i := range 3 {
		b.insert(t, time.Date(2026, 11, 20, 12, i, 0, 0, time.UTC), nil)
	}
	page, err := ListCalls(context.Background(), b.tx, ListFilter{Limit: 3})
	require.NoError(t, err)
	require.Len(t, page.Calls, 3)
	require.Nil(t, page.Next, "no empty page after an exactly full one")
}

func TestListCursorRejectsForeignStrings(t *testing.T) {
	t.Parallel()
	c := ListCursor{CreatedAt: time.Date(2026, 11, 20, 12, 0, 0, 123456000, time.UTC), ID: uuid.New()}
	back, err := ParseListCursor(c.String())
	require.NoError(t, err)
	require.Equal(t, c, back, "microsecond precision survives")

	otherVersion := base64.RawURLEncoding.EncodeToString(append([]byte{2}, make([]byte, 24)...))
	for _, s := range []string{"", "abc", "!!!!", c.String()[:10], c.String() + "AA", otherVersion} {
		_, err := ParseListCursor(s)
		require.ErrorIs(t, err, ErrInvalidCursor, "%q", s)
	}
}

// TestListQueriesUseTheirIndexes guards the coupling between the queries and
// migration 004: with sequential and plain index scans disabled, the planner
// can only answer from the index made for the filter, if the query still
// matches it.
func TestListQueriesUseTheirIndexes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupList(t)
	var trgm bool
	require.NoError(t, b.tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm')`).Scan(&trgm))
	_, err := b.tx.Exec(ctx, `SET LOCAL enable_seqscan = off; SET LOCAL enable_indexscan = off`)
	require.NoError(t, err)
	notDone := false
	for _, tc := range []struct {
		name  string
		f     ListFilter
		index string
	}{
		{"done=false", ListFilter{Done: &notDone}, "calls_not_done_created_at_idx"},
		{"search", ListFilter{Search: "smith"}, "calls_search_trgm_idx"},
		{"search by phone digits", ListFilter{Search: "555-0100"}, "calls_search_trgm_idx"},
		{"search by phone digits", ListFilter{Search: "555-0100"}, "calls_phone_digits_idx"},
		{"search by plain digits", ListFilter{Search: "5550100"}, "calls_phone_digits_idx"},
	} {
		if tc.index == "calls_search_trgm_idx" && !trgm {
			t.Logf("%s: pg_trgm is not installed on this server; the search index is optional", tc.name)
			continue
		}
		sql, args, _, err := listQuery(tc.f)
		require.NoError(t, err)
		rows, err := b.tx.Query(ctx, "EXPLAIN "+sql, args...)
		require.NoError(t, err)
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		plan := strings.Join(lines, "\n")
		require.Contains(t, plan, tc.index, "%s:\n%s", tc.name, plan)
		require.NotContains(t, plan, "Seq Scan", "%s:\n%s", tc.name, plan)
	}
}

// TestListCallsSearchByDigits covers the digits lookup of migration 014: a
// term of digits and phone punctuation finds the numbers whose digits
// contain it, wherever the run sits, and nothing else.
func TestListCallsSearchByDigits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupList(t)
	at := func(m int) time.Time { return time.Date(2026, 11, 20, 12, m, 0, 0, time.UTC) }
	phone := func(p, name string) func(*call.Record) {
		return func(r *call.Record) { r.PhoneNumber, r.CustomerName = p, name }
	}
	ada := b.insert(t, at(1), phone("+1 (415) 555-0100", "Ada Lovelace"))
	grace := b.insert(t, at(2), phone("+14155550199", "Grace Hopper"))
	other := b.insert(t, at(3), phone("+442079460000", "Alan Turing"))
	anon := b.insert(t, at(4), phone("anonymous", "Call 5550100 back"))
	deleted := b.insert(t, at(5), phone("+14155550100", "Deleted Dora"))
	_, err := b.tx.Exec(ctx, `UPDATE calls SET deleted_at = now() WHERE id = $1`, deleted)
	require.NoError(t, err)
	// A purge left half-done: the number is still in phone_key. Its summary
	// mentions the number, which still finds it (a summary is not erased).
	purged := b.insert(t, at(6), phone("+14155550100", "Purged Pete"))
	purgedBySummary := b.insert(t, at(7), phone("+14155550100", "Purged Paula"))
	_, err = b.tx.Exec(ctx, `UPDATE calls SET is_purged = true, purged_at = now(), phone_number = NULL,
		customer_name = NULL, phone_key = CASE WHEN id = $1 THEN phone_key END,
		call_summary = CASE WHEN id = $2 THEN 'Asked us to call 555-0100.' END
		WHERE id IN ($1, $2)`, purged, purgedBySummary)
	require.NoError(t, err)

	list := func(f ListFilter) []uuid.UUID {
		t.Helper()
		page, err := ListCalls(ctx, b.tx, f)
		require.NoError(t, err)
		ids := []uuid.UUID{}
		for _, c := range page.Calls {
			ids = append(ids, c.ID)
		}
		return ids
	}
	for _, tc := range []struct {
		name string
		f    ListFilter
		want []uuid.UUID
	}{
		{"full number with punctuation", ListFilter{Search: "+1 (415) 555-0100"}, []uuid.UUID{ada}},
		{"national number", ListFilter{Search: "415.555.0100"}, []uuid.UUID{ada}},
		{"partial trailing digits", ListFilter{Search: "0199"}, []uuid.UUID{grace}},
		{"partial leading digits with punctuation", ListFilter{Search: "(415) 555-01"}, []uuid.UUID{grace, ada}},
		{"digits in the middle", ListFilter{Search: "2079 46"}, []uuid.UUID{other}},
		{"digits found as text in a name, and in a summary of a purged call", ListFilter{Search: "555-0100"},
			[]uuid.UUID{purgedBySummary, ada}},
		{"plain digits match the name of a call without a key", ListFilter{Search: "5550100"}, []uuid.UUID{anon, ada}},
		{"include deleted", ListFilter{Search: "555-0100", IncludeDeleted: true},
			[]uuid.UUID{purgedBySummary, deleted, ada}},
		{"digits that no number holds", ListFilter{Search: "555-0101"}, []uuid.UUID{}},
		{"more digits than a number has", ListFilter{Search: "1415555010012345"}, []uuid.UUID{}},
		{"a name search still works", ListFilter{Search: "hopper"}, []uuid.UUID{grace}},
		{"a number without a key is found as text", ListFilter{Search: "anonym"}, []uuid.UUID{anon}},
	} {
		require.Equal(t, tc.want, list(tc.f), tc.name)
	}

	// Pagination by cursor over a digits search: every match once, in order.
	page, err := ListCalls(ctx, b.tx, ListFilter{Search: "555-01", IncludeDeleted: true, Limit: 2})
	require.NoError(t, err)
	require.NotNil(t, page.Next)
	got := []uuid.UUID{page.Calls[0].ID, page.Calls[1].ID}
	page, err = ListCalls(ctx, b.tx, ListFilter{Search: "555-01", IncludeDeleted: true, Limit: 2, After: page.Next})
	require.NoError(t, err)
	require.Nil(t, page.Next)
	for _, c := range page.Calls {
		got = append(got, c.ID)
	}
	require.Equal(t, []uuid.UUID{purgedBySummary, deleted, grace, ada}, got)
}
