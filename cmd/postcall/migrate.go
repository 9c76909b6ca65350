package main

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/postcall/postcall/config"
	"github.com/postcall/postcall/migrations"
)

// runMigrate creates the database if it is missing, then applies River's and
// postcall's pending migrations.
func runMigrate(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "migrate", "migrate")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := config.Load(e.environ)
	if err != nil {
		return err
	}
	created, err := migrations.EnsureDatabase(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	if created {
		fmt.Fprintf(e.stdout, "created database %s\n", migrations.RedactURL(cfg.DatabaseURL))
	}
	pool, err := pgxpool.New(ctx, cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("connect %s: %w", migrations.RedactURL(cfg.DatabaseURL), err)
	}
	defer pool.Close()
	res, err := migrations.Apply(ctx, pool, "")
	if err != nil {
		return err
	}
	if len(res.River) == 0 && len(res.Postcall) == 0 {
		fmt.Fprintln(e.stdout, "schema is current; nothing to apply")
		return nil
	}
	if len(res.River) > 0 {
		fmt.Fprintf(e.stdout, "applied River migrations %v\n", res.River)
	}
	for _, name := range res.Postcall {
		fmt.Fprintf(e.stdout, "applied %s\n", name)
	}
	return nil
}
