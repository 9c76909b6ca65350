// Package migrations brings a database up to the schema this binary needs:
// River's tables through rivermigrate, then postcall's own embedded,
// forward-only SQL files. Applying is safe to repeat and safe to run from
// several processes at once.
package migrations

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

//go:embed sql/*.sql
var files embed.FS

// lockID serialises concurrent `postcall migrate` runs on one database.
const lockID = 0x706f737463616c6c // "postcall"

// Migration is one of postcall's SQL files.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// All returns postcall's migrations in version order.
func All() ([]Migration, error) {
	entries, err := fs.ReadDir(files, "sql")
	if err != nil {
		return nil, fmt.Errorf("read embedded migrations: %w", err)
	}
	var all []Migration
	for _, e := range entries {
		name := e.Name()
		num, _, ok := strings.Cut(name, "_")
		version, err := strconv.Atoi(num)
		if !ok || err != nil || !strings.HasSuffix(name, ".sql") {
			return nil, fmt.Errorf("migration file %q: want NNN_name.sql", name)
		}
		body, err := fs.ReadFile(files, path.Join("sql", name))
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", name, err)
		}
		all = append(all, Migration{Version: version, Name: strings.TrimSuffix(name, ".sql"), SQL: string(body)})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Version < all[j].Version })
	for i, m := range all {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migration %s: versions must run 1, 2, 3... without gaps", m.Name)
		}
	}
	return all, nil
}

// Result says what Apply did.
type Result struct {
	// River lists River's migration versions applied by this run.
	River []int
	// Postcall lists postcall's migrations applied by this run.
	Postcall []string
}

// Apply runs River's and postcall's pending migrations in schema ("" means
// the connection's search_path).
func Apply(ctx context.Context, pool *pgxpool.Pool, schema string) (*Result, error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate: connect: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", int64(lockID)); err != nil {
		return nil, fmt.Errorf("migrate: take migration lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", int64(lockID)) //nolint:errcheck // the session ends with the connection anyway

	all, err := All()
	if err != nil {
		return nil, err
	}
	table := qualify(schema, "postcall_migrations")
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+table+` (
		version    integer PRIMARY KEY,
		name       text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return nil, fmt.Errorf("migrate: create %s: %w", table, err)
	}
	applied, err := appliedMigrations(ctx, conn.Conn(), table)
	if err != nil {
		return nil, err
	}
	// A diverged history is refused before anything, River's included, is
	// applied.
	pending, err := pendingMigrations(all, applied)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}

	migrator, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Schema: schema})
	if err != nil {
		return nil, fmt.Errorf("migrate: river: %w", err)
	}
	riverRes, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil)
	if err != nil {
		return nil, fmt.Errorf("migrate: river: %w", err)
	}
	res := &Result{}
	for _, v := range riverRes.Versions {
		res.River = append(res.River, v.Version)
	}
	for _, m := range pending {
		err := pgx.BeginFunc(ctx, conn.Conn(), func(tx pgx.Tx) error {
			if schema != "" {
				if _, err := tx.Exec(ctx, "SET LOCAL search_path TO "+pgx.Identifier{schema}.Sanitize()); err != nil {
					return err
				}
			}
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO `+table+` (version, name) VALUES ($1, $2)`, m.Version, m.Name)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("migrate: apply %s: %w", m.Name, err)
		}
		res.Postcall = append(res.Postcall, m.Name)
	}
	return res, nil
}

// ErrBehind is returned by Check when the database needs `postcall migrate`.
var ErrBehind = errors.New("database schema is behind this binary: run `postcall migrate`")

// Check reports whether both River's and postcall's migrations are current.
// The error wraps ErrBehind and says which part is behind.
func Check(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	migrator, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Schema: schema})
	if err != nil {
		return fmt.Errorf("check schema: %w", err)
	}
	v, err := migrator.Validate(ctx, nil)
	if err != nil {
		return fmt.Errorf("check schema: river: %w", err)
	}
	if !v.OK {
		return fmt.Errorf("%w (River: %s)", ErrBehind, strings.Join(v.Messages, "; "))
	}
	all, err := All()
	if err != nil {
		return err
	}
	table := qualify(schema, "postcall_migrations")
	applied, err := appliedMigrations(ctx, pool, table)
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42P01" { // undefined_table
			return fmt.Errorf("%w (postcall: no migration applied)", ErrBehind)
		}
		return err
	}
	pending, err := pendingMigrations(all, applied)
	if err != nil {
		return fmt.Errorf("check schema: %w", err)
	}
	if len(pending) > 0 {
		return fmt.Errorf("%w (postcall: %s not applied)", ErrBehind, pending[0].Name)
	}
	return nil
}

// ErrDiverged is returned by Apply and Check when a version the database
// has applied carries another name than this binary's migration of that
// version: another build's migration took the number, so this binary's was
// never run and a check by number alone would skip it. Nothing is applied;
// the database needs its schema reconciled by hand.
var ErrDiverged = errors.New("database migrations diverge from this binary's")

// pendingMigrations returns the migrations of all that applied (name by
// version) lacks, or an error wrapping ErrDiverged that names every
// version applied under another name, with both names.
func pendingMigrations(all []Migration, applied map[int]string) ([]Migration, error) {
	var pending []Migration
	var diverged []string
	for _, m := range all {
		name, ok := applied[m.Version]
		switch {
		case !ok:
			pending = append(pending, m)
		case name != m.Name:
			diverged = append(diverged, fmt.Sprintf("version %d is %s in the database but %s in this binary", m.Version, name, m.Name))
		}
	}
	if len(diverged) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrDiverged, strings.Join(diverged, "; "))
	}
	return pending, nil
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// appliedMigrations returns the names of the applied migrations by version.
func appliedMigrations(ctx context.Context, db querier, table string) (map[int]string, error) {
	rows, err := db.Query(ctx, `SELECT version, name FROM `+table)
	if err != nil {
		return nil, fmt.Errorf("read applied migrations: %w", err)
	}
	applied := map[int]string{}
	var (
		version int
		name    string
	)
	_, err = pgx.ForEachRow(rows, []any{&version, &name}, func() error {
		applied[version] = name
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read applied migrations: %w", err)
	}
	return applied, nil
}

func qualify(schema, table string) string {
	if schema == "" {
		return table
	}
	return pgx.Identifier{schema, table}.Sanitize()
}

// EnsureDatabase creates the database named in databaseURL when it does not
// exist, connecting to the server's "postgres" database to do so. It reports
// whether it created it.
func EnsureDatabase(ctx context.Context, databaseURL string) (bool, error) {
	cfg, err := pgx.ParseConfig(databaseURL)
	if err != nil {
		return false, fmt.Errorf("parse database URL: %w", err)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err == nil {
		return false, conn.Close(ctx)
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "3D000" { // invalid_catalog_name
		return false, fmt.Errorf("connect to database %q: %w", cfg.Database, err)
	}
	admin := cfg.Copy()
	admin.Database = "postgres"
	conn, err = pgx.ConnectConfig(ctx, admin)
	if err != nil {
		return false, fmt.Errorf("connect to server to create database %q: %w", cfg.Database, err)
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{cfg.Database}.Sanitize())
	if err != nil {
		if errors.As(err, &pgErr) && pgErr.Code == "42P04" { // duplicate_database: created concurrently
			return false, nil
		}
		return false, fmt.Errorf("create database %q: %w", cfg.Database, err)
	}
	return true, nil
}

// RedactURL returns databaseURL without its password, for messages.
func RedactURL(databaseURL string) string {
	u, err := url.Parse(databaseURL)
	if err != nil || u.User == nil {
		return databaseURL
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}
