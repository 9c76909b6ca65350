package pricing_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/analysis"
	"github.com/postcall/postcall/pricing"
)

func TestCostAtEachTier(t *testing.T) {
	t.Parallel()
	// 1,300 prompt tokens of which 1,024 cached, 200 completion tokens.
	u := analysis.Usage{Prompt: 1300, CachedRead: 1024, Completion: 200}
	var table *pricing.Table // nil: the built-in table
	for _, tc := range []struct {
		model, tier string
		want        float64
	}{
		// gpt-4.1-mini: 276 x 0.40 + 1024 x 0.10 + 200 x 1.60, per million.
		{"gpt-4.1-mini", analysis.TierDefault, (276*0.40 + 1024*0.10 + 200*1.60) / 1e6},
		{"gpt-4.1-mini", "", (276*0.40 + 1024*0.10 + 200*1.60) / 1e6},
		{"gpt-4.1-mini", pricing.TierBatch, (276*0.20 + 1024*0.05 + 200*0.80) / 1e6},
		{"gpt-5-mini", analysis.TierDefault, (276*0.25 + 1024*0.025 + 200*2) / 1e6},
		{"gpt-5-mini", analysis.TierFlex, (276*0.125 + 1024*0.0125 + 200*1) / 1e6},
		{"gpt-5-mini", pricing.TierBatch, (276*0.125 + 1024*0.0125 + 200*1) / 1e6},
	} {
		got, ok := table.Cost(tc.model, tc.tier, u)
		require.True(t, ok, "%s %s", tc.model, tc.tier)
		require.InDelta(t, tc.want, got, 1e-12, "%s %s", tc.model, tc.tier)
	}
	// gpt-4.1 has no flex tier: a request served at flex is unpriced, not
	// priced at another tier's rates.
	_, ok := table.Cost("gpt-4.1", analysis.TierFlex, u)
	require.False(t, ok)
}

func TestModelMatching(t *testing.T) {
	t.Parallel()
	table := pricing.Default()
	mini, ok := table.Lookup("gpt-4.1-mini")
	require.True(t, ok)
	snapshot, ok := table.Lookup("gpt-4.1-mini-2025-04-14")
	require.True(t, ok, "a dated snapshot is priced as its model")
	require.Equal(t, mini, snapshot)

	// A snapshot with an entry of its own keeps it.
	old, ok := table.Lookup("gpt-4o-2024-05-13")
	require.True(t, ok)
	require.Equal(t, 5.0, old.Standard.Input)
	newer, ok := table.Lookup("gpt-4o-2024-08-06")
	require.True(t, ok)
	require.Equal(t, 2.5, newer.Standard.Input)

	// Never a guess: nothing but the exact name or a dated snapshot.
	for _, model := range []string{
		"gpt-4.1-mini-fast", "gpt-4.1-min", "GPT-4.1-MINI", "openai/gpt-4.1-mini", "gpt-4.1-mini-2025-04",
		"gpt-4.1-mini-latest", "llama-3.1-8b", "", "demo",
	} {
		_, ok := table.Lookup(model)
		require.False(t, ok, "%q must be unpriced", model)
		_, ok = table.Cost(model, analysis.TierDefault, analysis.Usage{Prompt: 10})
		require.False(t, ok, "%q must be unpriced", model)
	}
	// The models the brief names are all priced.
	for _, model := range []string{"gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "gpt-4o", "gpt-4o-mini", "gpt-5",
		"gpt-5-mini", "gpt-5-nano", "o3", "o4-mini", analysis.DefaultModel} {
		p, ok := table.Lookup(model)
		require.True(t, ok, model)
		require.NotNil(t, p.Batch, "%s has Batch API rates", model)
		require.Greater(t, p.Standard.Output, p.Standard.Input, model)
		require.LessOrEqual(t, p.Standard.CachedInput, p.Standard.Input, model)
	}
}

func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, []byte(text), 0o600))
	return path
}

func TestPriceFileOverridesAndAdds(t *testing.T) {
	t.Parallel()
	path := writeFile(t, "prices.yaml", `
models:
  gpt-4.1-mini:          # a price change
    input: 0.30
    cached_input: 0.05
    output: 1.20
    batch: {input: 0.15, cached_input: 0.025, output: 0.60}
  local-llama:           # a model of its own, no caching, no batch
    input: 0
    output: 0.01
`)
	table, err := pricing.Load(path)
	require.NoError(t, err)
	mini, ok := table.Lookup("gpt-4.1-mini-2025-04-14")
	require.True(t, ok)
	require.Equal(t, pricing.Rates{Input: 0.30, CachedInput: 0.05, Output: 1.20}, mini.Standard)
	require.Equal(t, &pricing.Rates{Input: 0.15, CachedInput: 0.025, Output: 0.60}, mini.Batch)
	require.Nil(t, mini.Flex)

	llama, ok := table.Lookup("local-llama")
	require.True(t, ok)
	require.Equal(t, pricing.Rates{Input: 0, CachedInput: 0, Output: 0.01}, llama.Standard, "cached_input defaults to input")
	_, ok = table.Cost("local-llama", pricing.TierBatch, analysis.Usage{Prompt: 1})
	require.False(t, ok, "a tier the file leaves out is unpriced")

	// The built-in entries the file does not name stay.
	_, ok = table.Lookup("gpt-5")
	require.True(t, ok)
	// The built-in table itself is unchanged.
	builtin, _ := pricing.Default().Lookup("gpt-4.1-mini")
	require.Equal(t, 0.40, builtin.Standard.Input)

	// JSON is YAML too.
	table, err = pricing.Load(writeFile(t, "prices.json", `{"models": {"m": {"input": 1, "output": 2, "flex": {"input": 0.5, "output": 1}}}}`))
	require.NoError(t, err)
	usd, ok := table.Cost("m", analysis.TierFlex, analysis.Usage{Prompt: 1_000_000, Completion: 1_000_000})
	require.True(t, ok)
	require.InDelta(t, 1.5, usd, 1e-12)
}

func TestPriceFileProblemsAllAtOnce(t *testing.T) {
	t.Parallel()
	path := writeFile(t, "prices.yaml", `
models:
  gpt-4.1:
    inptu: 2
    output: -8
  gpt-4o:
    input: "2.50"
    output: 10
    batch: {input: 1.25}
    flex: yes
  o3: 3
extra: 1
`)
	_, err := pricing.Load(path)
	require.Error(t, err)
	msg := err.Error()
	for _, want := range []string{
		path + ": ",
		"extra: unknown key",
		"models.gpt-4.1.inptu: unknown key",
		"models.gpt-4.1.input: required",
		"models.gpt-4.1.output: -8 must be a number",
		`models.gpt-4o.input: "2.50" must be a number`,
		"models.gpt-4o.batch.output: required",
		"models.gpt-4o.flex: want a mapping",
		"models.o3: want a mapping",
	} {
		require.Contains(t, msg, want)
	}

	for name, text := range map[string]string{
		"empty.yaml":   "",
		"nomodels.yml": "models: {}\n",
		"bad.yaml":     "models: [\n",
		"dup.yaml":     "models:\n  m: {input: 1, output: 1}\n  m: {input: 2, output: 2}\n",
	} {
		_, err := pricing.Load(writeFile(t, name, text))
		require.Error(t, err, name)
		require.Contains(t, err.Error(), name, "the error names the file")
	}
	_, err = pricing.Load(filepath.Join(t.TempDir(), "missing.yaml"))
	require.ErrorContains(t, err, "missing.yaml")
}
