package pipeline

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/analysis"
)

// historyDB answers the completion history query with answers and p99,
// counting the queries; the first is answered once release is closed.
type historyDB struct {
	queries   atomic.Int32
	answers   int
	p99       int
	release   chan struct{}
	querySent chan struct{}
}

func (db *historyDB) Exec(context.Context, string, ...any) (pgconn.CommandTag, error) {
	panic("not used")
}

func (db *historyDB) Query(context.Context, string, ...any) (pgx.Rows, error) { panic("not used") }

func (db *historyDB) QueryRow(context.Context, string, ...any) pgx.Row {
	if db.queries.Add(1) == 1 {
		db.querySent <- struct{}{}
		<-db.release
	}
	return historyRow{db.answers, db.p99}
}

type historyRow struct{ answers, p99 int }

func (r historyRow) Scan(dest ...any) error {
	*dest[0].(*int), *dest[1].(*int) = r.answers, r.p99
	return nil
}

func TestExpiredHistoryIsReadOnceWhileTheOthersKeepTheOld(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	old := analysis.History{Answers: 40, P99: 300}
	var h histories
	h.m = map[historyKey]cachedHistory{{"sales", 1, "analysis"}: {history: old, read: time.Now().Add(-2 * historyTTL)}}
	db := &historyDB{answers: 60, p99: 320, release: make(chan struct{}), querySent: make(chan struct{}, 1)}

	got := make(chan analysis.History, 1)
	go func() {
		hist, err := h.get(ctx, db, "sales", 1, "analysis")
		if err != nil {
			hist = analysis.History{Answers: -1}
		}
		got <- hist
	}()
	<-db.querySent
	// Meanwhile another run of the plan: the old history, no query.
	hist, err := h.get(ctx, db, "sales", 1, "analysis")
	require.NoError(t, err)
	require.Equal(t, old, hist)
	close(db.release)
	require.Equal(t, analysis.History{Answers: 60, P99: 320}, <-got)
	require.Equal(t, int32(1), db.queries.Load())

	// Then the new one, from memory.
	hist, err = h.get(ctx, db, "sales", 1, "analysis")
	require.NoError(t, err)
	require.Equal(t, analysis.History{Answers: 60, P99: 320}, hist)
	require.Equal(t, int32(1), db.queries.Load())
}
