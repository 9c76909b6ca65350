package migrations_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/internal/dbtest"
	"github.com/postcall/postcall/migrations"
)

func TestApplyIsRepeatableAndCheckPasses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, schema := dbtest.Schema(t)

	require.NoError(t, migrations.Check(ctx, pool, schema))

	// A second run applies nothing.
	res, err := migrations.Apply(ctx, pool, schema)
	require.NoError(t, err)
	require.Empty(t, res.River)
	require.Empty(t, res.Postcall)
}

func TestCheckReportsBehind(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, schema := dbtest.Schema(t)

	_, err := pool.Exec(ctx, "DELETE FROM postcall_migrations WHERE version = (SELECT max(version) FROM postcall_migrations)")
	require.NoError(t, err)
	err = migrations.Check(ctx, pool, schema)
	require.ErrorIs(t, err, migrations.ErrBehind)
	require.Contains(t, err.Error(), "postcall migrate")

	_, err = pool.Exec(ctx, "DROP TABLE postcall_migrations")
	require.NoError(t, err)
	err = migrations.Check(ctx, pool, schema)
	require.True(t, errors.Is(err, migrations.ErrBehind), "got %v", err)
}

func TestAllIsOrdered(t *testing.T) {
	t.Parallel()
	all, err := migrations.All()
	require.NoError(t, err)
	require.NotEmpty(t, all)
	for i, m := range all {
		require.Equal(t, i+1, m.Version, m.Name)
	}
}

// TestDivergedMigrationIsRefused: a database migrated by another build has
// a different migration under one of this binary's version numbers (its
// 007 is not ours). Counting versions alone, Apply would skip our 007 and
// Check would pass; both refuse instead, naming both migrations, and Apply
// applies nothing, not even the migrations after it.
func TestDivergedMigrationIsRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, schema := dbtest.Schema(t)
	all, err := migrations.All()
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(all), 2)
	ours, last := all[len(all)-2], all[len(all)-1]

	// The other build's migration holds our second-to-last number, and our
	// last one is not applied yet.
	_, err = pool.Exec(ctx, `UPDATE postcall_migrations SET name = $2 WHERE version = $1`, ours.Version, "007_other_build")
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `DELETE FROM postcall_migrations WHERE version = $1`, last.Version)
	require.NoError(t, err)

	err = migrations.Check(ctx, pool, schema)
	require.ErrorIs(t, err, migrations.ErrDiverged)
	require.NotErrorIs(t, err, migrations.ErrBehind, "migrate cannot fix it")
	require.Contains(t, err.Error(), "007_other_build")
	require.Contains(t, err.Error(), ours.Name)

	// River's own latest migration is pending too: Apply refuses before it.
	var riverLatest int
	require.NoError(t, pool.QueryRow(ctx, `DELETE FROM river_migration WHERE version = (SELECT max(version) FROM river_migration)
		RETURNING version`).Scan(&riverLatest))
	res, err := migrations.Apply(ctx, pool, schema)
	require.ErrorIs(t, err, migrations.ErrDiverged)
	require.Nil(t, res)
	require.Contains(t, err.Error(), "007_other_build")
	require.Contains(t, err.Error(), ours.Name)
	var n int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM postcall_migrations WHERE version = $1`, last.Version).Scan(&n))
	require.Zero(t, n, "nothing is applied over a diverged history")
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM river_migration WHERE version = $1`, riverLatest).Scan(&n))
	require.Zero(t, n, "not even River's migrations")
}
