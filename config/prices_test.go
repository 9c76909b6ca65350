package config_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/analysis"
	"github.com/postcall/postcall/config"
	"github.com/postcall/postcall/pricing"
)

func TestPricesFile(t *testing.T) {
	t.Parallel()
	// Default: the built-in prices.
	cfg, err := config.Load(nil)
	require.NoError(t, err)
	require.Same(t, pricing.Default(), cfg.Prices)
	_, ok := cfg.Prices.Lookup(analysis.DefaultModel)
	require.True(t, ok, "the default model is priced out of the box")

	dir := t.TempDir()
	good := filepath.Join(dir, "prices.yaml")
	require.NoError(t, os.WriteFile(good, []byte("models:\n  my-model: {input: 1, output: 2}\n"), 0o600))
	cfg, err = config.Load([]string{"POSTCALL_PRICES_FILE=" + good})
	require.NoError(t, err)
	require.Equal(t, good, cfg.PricesFile)
	_, ok = cfg.Prices.Lookup("my-model")
	require.True(t, ok)
	_, ok = cfg.Prices.Lookup(analysis.DefaultModel)
	require.True(t, ok, "the built-in prices stay under the file")

	// A bad file fails at start, naming the variable, the file and every
	// bad key, with the other variables' problems.
	bad := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("models:\n  my-model: {input: -1, outptu: 2}\n"), 0o600))
	_, err = config.Load([]string{"POSTCALL_PRICES_FILE=" + bad, "POSTCALL_LLM_RPM=x"})
	require.ErrorContains(t, err, "POSTCALL_PRICES_FILE: "+bad+": ")
	require.ErrorContains(t, err, "models.my-model.input: -1 must be a number")
	require.ErrorContains(t, err, "models.my-model.outptu: unknown key")
	require.ErrorContains(t, err, "models.my-model.output: required")
	require.ErrorContains(t, err, "POSTCALL_LLM_RPM")

	_, err = config.Load([]string{"POSTCALL_PRICES_FILE=" + filepath.Join(dir, "none.yaml")})
	require.ErrorContains(t, err, "POSTCALL_PRICES_FILE: read price file: open "+filepath.Join(dir, "none.yaml"))
}
