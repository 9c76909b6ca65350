// Package schemaexample generates a JSON value that satisfies a JSON schema
// of the subset strict structured outputs use: object (properties,
// required), array (items), string (enum, format date), number, integer,
// boolean and null, with "type" given as a name or a list of names. The
// demo model and the fake OpenAI server answer with it.
package schemaexample

import (
	"encoding/json"
	"fmt"
	"slices"
)

// Choices decide the generated values. Every function gets the value's path
// ("outcome", "greeting.passed"); nil functions fall back to fixed values.
type Choices struct {
	// Null says to answer null where the schema allows it. Default never.
	Null func(path, typ string) bool
	// String is a free-text value. Default "example".
	String func(path string) string
	// Enum picks one of the allowed values. Default the first non-null.
	Enum func(path string, values []any) any
	// Bool is a boolean. Default true.
	Bool func(path string) bool
	// Number is a number. Default 1.5.
	Number func(path string) float64
	// Integer is an integer. Default 1.
	Integer func(path string) int64
	// Date is a YYYY-MM-DD string for format date. Default "2024-01-15".
	Date func(path string) string
}

// node is the part of a schema the generator reads.
type node struct {
	Type       json.RawMessage            `json:"type"`
	Enum       []any                      `json:"enum"`
	Format     string                     `json:"format"`
	Properties map[string]json.RawMessage `json:"properties"`
	Required   []string                   `json:"required"`
	Items      json.RawMessage            `json:"items"`
}

// Generate returns a JSON value valid against schema.
func Generate(schema json.RawMessage, c Choices) (json.RawMessage, error) {
	v, err := c.value(schema, "")
	if err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

func (c Choices) value(schema json.RawMessage, path string) (any, error) {
	var n node
	if err := json.Unmarshal(schema, &n); err != nil {
		return nil, fmt.Errorf("schema at %q: %w", path, err)
	}
	types, err := n.types()
	if err != nil {
		return nil, fmt.Errorf("schema at %q: %w", path, err)
	}
	nullable := slices.Contains(types, "null") || slices.Contains(n.Enum, nil)
	if len(n.Enum) > 0 {
		if nullable && c.Null != nil && c.Null(path, "enum") {
			return nil, nil
		}
		values := slices.DeleteFunc(slices.Clone(n.Enum), func(v any) bool { return v == nil })
		if len(values) == 0 {
			return nil, nil
		}
		if c.Enum != nil {
			return c.Enum(path, values), nil
		}
		return values[0], nil
	}
	typ := ""
	for _, t := range types {
		if t != "null" {
			typ = t
			break
		}
	}
	if typ == "" {
		return nil, nil
	}
	if n.Format == "date" && typ == "string" {
		typ = "date"
	}
	if nullable && c.Null != nil && c.Null(path, typ) {
		return nil, nil
	}
	switch typ {
	case "object":
		out := make(map[string]any, len(n.Properties))
		for name, sub := range n.Properties {
			v, err := c.value(sub, join(path, name))
			if err != nil {
				return nil, err
			}
			out[name] = v
		}
		return out, nil
	case "array":
		if len(n.Items) == 0 {
			return []any{}, nil
		}
		v, err := c.value(n.Items, path+"[0]")
		if err != nil {
			return nil, err
		}
		return []any{v}, nil
	case "string":
		if c.String != nil {
			return c.String(path), nil
		}
		return "example", nil
	case "date":
		if c.Date != nil {
			return c.Date(path), nil
		}
		return "2024-01-15", nil
	case "boolean":
		if c.Bool != nil {
			return c.Bool(path), nil
		}
		return true, nil
	case "number":
		if c.Number != nil {
			return c.Number(path), nil
		}
		return 1.5, nil
	case "integer":
		if c.Integer != nil {
			return c.Integer(path), nil
		}
		return 1, nil
	}
	return nil, fmt.Errorf("schema at %q: unsupported type %q", path, typ)
}

// types reads "type" given as one name or a list of names.
func (n node) types() ([]string, error) {
	if len(n.Type) == 0 {
		if len(n.Properties) > 0 {
			return []string{"object"}, nil
		}
		return nil, nil
	}
	var one string
	if err := json.Unmarshal(n.Type, &one); err == nil {
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(n.Type, &many); err != nil {
		return nil, fmt.Errorf("type must be a name or a list of names")
	}
	return many, nil
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}
