// Package dbtest gives tests a real PostgreSQL: a transaction rolled back at
// cleanup for tests that need no commits, and a schema of their own for tests
// that do (a running worker commits). A test that needs PostgreSQL fails when
// none is reachable; it never skips.
package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/postcall/postcall/migrations"
)

// DefaultURL is used when TEST_DATABASE_URL is unset.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/postcall_test?sslmode=disable"

// URL is the test database's URL: TEST_DATABASE_URL or DefaultURL.
func URL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultURL
}

var shared struct {
	once sync.Once
	pool *pgxpool.Pool
	err  error
}

// Pool returns the process's pool on the test database, created and migrated
// on first use.
func Pool(tb testing.TB) *pgxpool.Pool {
	tb.Helper()
	shared.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := migrations.EnsureDatabase(ctx, URL()); err != nil {
			shared.err = err
			return
		}
		pool, err := pgxpool.New(context.Background(), URL())
		if err != nil {
			shared.err = err
			return
		}
		if _, err := migrations.Apply(ctx, pool, ""); err != nil {
			pool.Close()
			shared.err = err
			return
		}
		shared.pool = pool
	})
	if shared.err != nil {
		tb.Fatalf("test database %s: %v (set TEST_DATABASE_URL or start PostgreSQL)", migrations.RedactURL(URL()), shared.err)
	}
	return shared.pool
}

// Tx returns a transaction on the migrated test database, rolled back at
// cleanup, so tests see each other's data never.
func Tx(tb testing.TB) pgx.Tx {
	tb.Helper()
	tx, err := Pool(tb).Begin(context.Background())
	if err != nil {
		tb.Fatalf("begin test transaction: %v", err)
	}
	tb.Cleanup(func() { _ = tx.Rollback(context.Background()) })
	return tx
}

// Schema creates a fresh, migrated schema for a test whose work must commit
// (a running River client) and returns a pool whose connections use it, and
// its name. The schema is dropped at cleanup.
func Schema(tb testing.TB) (*pgxpool.Pool, string) {
	tb.Helper()
	ctx := context.Background()
	admin := Pool(tb)
	suffix := make([]byte, 6)
	_, _ = rand.Read(suffix)
	schema := "pctest_" + hex.EncodeToString(suffix)
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		tb.Fatalf("create test schema: %v", err)
	}
	cfg, err := pgxpool.ParseConfig(URL())
	if err != nil {
		tb.Fatalf("parse test database URL: %v", err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	cfg.MaxConns = 8
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		tb.Fatalf("connect test schema: %v", err)
	}
	tb.Cleanup(func() {
		pool.Close()
		// A connection of the test's own (a stopping worker's heartbeat, a
		// child process exiting) may still hold a lock in the schema: the
		// drop then deadlocks with it, and is tried again.
		var err error
		for range 5 {
			if _, err = admin.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); !isDeadlock(err) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if err != nil {
			tb.Errorf("drop test schema %s: %v", schema, err)
		}
	})
	if _, err := migrations.Apply(ctx, pool, schema); err != nil {
		tb.Fatalf("migrate test schema: %v", err)
	}
	return pool, schema
}

// isDeadlock reports whether err is PostgreSQL's deadlock_detected.
func isDeadlock(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "40P01"
}
