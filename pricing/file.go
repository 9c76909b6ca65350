package pricing

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"
)

// A price file (POSTCALL_PRICES_FILE) is YAML or JSON:
//
//	models:
//	  gpt-4.1-mini:             # the model name as requested (a dated snapshot matches it too)
//	    input: 0.40             # US dollars per million prompt tokens; required
//	    cached_input: 0.10      # per million cached prompt tokens; default: the input rate
//	    output: 1.60            # per million completion tokens; required
//	    batch: {input: 0.20, cached_input: 0.05, output: 0.80}  # optional: Batch API rates
//	    flex: {input: 0.20, cached_input: 0.05, output: 0.80}   # optional: flex rates
//
// Each model of the file replaces the built-in entry of the same name, as a
// whole (a tier it leaves out is unpriced for that model); the other
// built-in entries stay.

// rateKeys are the keys of one tier's rates.
var rateKeys = []string{"input", "cached_input", "output"}

// Load returns the built-in table with the price file at path laid over it.
// Every problem of the file is reported at once, each naming the file and
// the key.
func Load(path string) (*Table, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read price file: %w", err)
	}
	models, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	merged := builtIn.Models()
	maps.Copy(merged, models)
	return NewTable(merged), nil
}

// Parse reads the models of a price file, reporting every problem, each
// naming its key (models.gpt-4.1.batch.output).
func Parse(data []byte) (map[string]Price, error) {
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, fmt.Errorf("not valid YAML or JSON: %w", err)
	}
	var doc map[string]any
	if err := json.Unmarshal(js, &doc); err != nil || doc == nil {
		return nil, errors.New("want a mapping with a models key")
	}
	var p problems
	for _, k := range sortedKeys(doc) {
		if k != "models" {
			p.add(k, "unknown key (want models)")
		}
	}
	raw, ok := doc["models"].(map[string]any)
	if !ok || len(raw) == 0 {
		p.add("models", "required: a mapping of model names to prices")
	}
	models := make(map[string]Price, len(raw))
	for _, name := range sortedKeys(raw) {
		key := "models." + name
		fields, ok := raw[name].(map[string]any)
		if strings.TrimSpace(name) == "" {
			p.add(key, "a model name must not be empty")
			continue
		}
		if !ok {
			p.add(key, "want a mapping with input, cached_input, output, batch, flex")
			continue
		}
		var price Price
		for _, k := range sortedKeys(fields) {
			if k != "batch" && k != "flex" && !slices.Contains(rateKeys, k) {
				p.add(key+"."+k, "unknown key (want input, cached_input, output, batch or flex)")
			}
		}
		price.Standard = p.rates(key, fields)
		for _, tier := range []struct {
			name string
			dst  **Rates
		}{{"batch", &price.Batch}, {"flex", &price.Flex}} {
			v, set := fields[tier.name]
			if !set {
				continue
			}
			tf, ok := v.(map[string]any)
			if !ok {
				p.add(key+"."+tier.name, "want a mapping with input, cached_input and output")
				continue
			}
			for _, k := range sortedKeys(tf) {
				if !slices.Contains(rateKeys, k) {
					p.add(key+"."+tier.name+"."+k, "unknown key (want input, cached_input or output)")
				}
			}
			r := p.rates(key+"."+tier.name, tf)
			*tier.dst = &r
		}
		models[name] = price
	}
	if len(p) > 0 {
		return nil, errors.New(strings.Join(p, "; "))
	}
	return models, nil
}

// problems collects a file's problems, each naming its key.
type problems []string

func (p *problems) add(key, msg string) { *p = append(*p, key+": "+msg) }

// rates reads input, cached_input and output under key; cached_input
// defaults to the input rate.
func (p *problems) rates(key string, fields map[string]any) Rates {
	var r Rates
	r.Input = p.rate(key+".input", fields, "input", true)
	r.Output = p.rate(key+".output", fields, "output", true)
	r.CachedInput = r.Input
	if _, set := fields["cached_input"]; set {
		r.CachedInput = p.rate(key+".cached_input", fields, "cached_input", false)
	}
	return r
}

// maxRate bounds a rate: a dollar figure above it per million tokens is a
// typo (a price per token, or in cents).
const maxRate = 10000

func (p *problems) rate(key string, fields map[string]any, name string, required bool) float64 {
	v, set := fields[name]
	if !set {
		if required {
			p.add(key, "required (US dollars per million tokens)")
		}
		return 0
	}
	f, ok := v.(float64)
	if !ok || math.IsNaN(f) || f < 0 || f > maxRate {
		p.add(key, fmt.Sprintf("%s must be a number of US dollars per million tokens from 0 to %d", jsonText(v), maxRate))
		return 0
	}
	return f
}

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
