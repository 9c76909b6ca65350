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
