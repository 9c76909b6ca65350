package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/postcall/postcall/config"

	"github.com/postcall/postcall/migrations"
	"github.com/postcall/postcall/pipeline"
)

// database is the benchmark's PostgreSQL database. Every scenario works in
// a fresh, migrated schema of its own, dropped when it ends, so scenarios
// never see each other's rows and a run leaves nothing behind.
type database struct {
	url string
	// admin is a small pool on the database's default search_path; it
	// creates and drops schemas.
	admin *pgxpool.Pool
	// maxConns is the pool size of a schema's pool; 0 means the worker's
	// default, config.DefaultDBMaxConns (POSTCALL_DB_MAX_CONNS).
	maxConns int32
	// keep leaves the schemas in place for inspection.
	keep bool
	// tracer, when set, is installed on every schema pool (-sqlprofile).
	tracer *sqlProfile
}

// openDatabase creates the database when it is missing and connects to it.
func openDatabase(ctx context.Context, url string, maxConns int32, keep bool) (*database, error) {
	if _, err := migrations.EnsureDatabase(ctx, url); err != nil {
		return nil, fmt.Errorf("benchmark database %s: %w", migrations.RedactURL(url), err)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("benchmark database URL: %w", err)
	}
	cfg.MaxConns = 2
	admin, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", migrations.RedactURL(url), err)
	}
	return &database{url: url, admin: admin, maxConns: maxConns, keep: keep}, nil
}

func (d *database) close() { d.admin.Close() }

// serverVersion is PostgreSQL's version, e.g. "PostgreSQL 15.20".
func (d *database) serverVersion(ctx context.Context) (string, error) {
	var v string
	if err := d.admin.QueryRow(ctx, `SHOW server_version`).Scan(&v); err != nil {
		return "", fmt.Errorf("PostgreSQL version: %w", err)
	}
	return "PostgreSQL " + v, nil
}

// schema is one scenario's schema and a pool whose connections use it.
type schema struct {
	Name string
	Pool *pgxpool.Pool
	db   *database
}

// newSchema creates and migrates a schema named after the scenario.
func (d *database) newSchema(ctx context.Context, scenario string) (*schema, error) {
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	name := "pcbench_" + scenario + "_" + hex.EncodeToString(suffix)
	if _, err := d.admin.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{name}.Sanitize()); err != nil {
		return nil, fmt.Errorf("create schema %s: %w", name, err)
	}
	s := &schema{Name: name, db: d}
	pool, err := d.pool(ctx, name, d.queryTracer())
	if err != nil {
		s.drop(ctx)
		return nil, err
	}
	s.Pool = pool
	if _, err := migrations.Apply(ctx, pool, name); err != nil {
		s.close(ctx)
		return nil, fmt.Errorf("migrate schema %s: %w", name, err)
	}
	return s, nil
}

// queryTracer is the SQL profile as a tracer, or nil without one.
func (d *database) queryTracer() pgx.QueryTracer {
	if d.tracer == nil {
		return nil
	}
	return d.tracer
}

// pool connects to the schema with the benchmark's pool settings and,
// when not nil, tracer.
func (d *database) pool(ctx context.Context, schemaName string, tracer pgx.QueryTracer) (*pgxpool.Pool, error) {
	cfg, err := poolConfig(d.url, schemaName, d.maxConns)
	if err != nil {
		return nil, err
	}
	if tracer != nil {
		cfg.ConnConfig.Tracer = tracer
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect schema %s: %w", schemaName, err)
	}
	return pool, nil
}

// poolConfig is the configuration of a pool on one schema. It is shared by
// the benchmark and its worker child process.
func poolConfig(url, schemaName string, maxConns int32) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("benchmark database URL: %w", err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schemaName
	cfg.MaxConns = cmp.Or(maxConns, config.DefaultDBMaxConns)
	return cfg, nil
}

// ingestPool opens another pool on the schema for the side that ingests
// calls (or inserts jobs), as `postcall ingest` or an API replica has its
// own. The caller closes it.
func (s *schema) ingestPool(ctx context.Context) (*pgxpool.Pool, error) {
	return s.db.pool(ctx, s.Name, s.db.queryTracer())
}

// ingester is the use cases on a pool of the schema's own, apart from the
// worker's, with an insert-only queue: what the scenarios ingest through,
// as the platform would. close closes its pool.
func (s *schema) ingester(ctx context.Context, log *slog.Logger) (enq *pipeline.Calls, close func(), err error) {
	pool, err := s.ingestPool(ctx)
	if err != nil {
		return nil, nil, err
	}
	enq, err = newEnqueuer(ctx, workerConfig{Pool: pool, Schema: s.Name, Logger: log})
	if err != nil {
		pool.Close()
		return nil, nil, err
	}
	return enq, pool.Close, nil
}

// poolDescription says how large the schema's pool is.
func (s *schema) poolDescription() string {
	return fmt.Sprintf("pool of %d connections", s.Pool.Config().MaxConns)
}

// close closes the schema's pool and drops the schema, unless the database
// keeps schemas.
func (s *schema) close(ctx context.Context) {
	if s.Pool != nil {
		s.Pool.Close()
	}
	s.drop(ctx)
}

func (s *schema) drop(ctx context.Context) {
	if s.db.keep {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	_, _ = s.db.admin.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{s.Name}.Sanitize()+" CASCADE")
}

// waitCounts polls query, which returns two counts (finished, failed),
// every interval until finished reaches n, and returns when it saw it. It
// fails as soon as anything failed, and at ctx's end.
func waitCounts(ctx context.Context, db *pgxpool.Pool, query string, n int, interval time.Duration) (time.Time, error) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		var finished, failed int
		if err := db.QueryRow(ctx, query).Scan(&finished, &failed); err != nil {
			return time.Time{}, fmt.Errorf("poll progress: %w", err)
		}
		now := time.Now()
		switch {
		case failed > 0:
			return now, fmt.Errorf("%d of %d failed (keep the schema with -keep to look)", failed, n)
		case finished >= n:
			return now, nil
		}
		select {
		case <-ctx.Done():
			return now, fmt.Errorf("%d of %d finished: %w", finished, n, context.Cause(ctx))
		case <-tick.C:
		}
	}
}
