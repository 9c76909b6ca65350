package analysis

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"

	"github.com/postcall/postcall/analysis/internal/schemaexample"
)

// DemoModelName is the Response.Model of every Demo answer, so that a demo
// result is never mistaken for a real analysis.
const DemoModelName = "postcall-demo"

// Demo is a Model that answers offline, for demos without an LLM endpoint.
// Its answers follow the request's schema and are deterministic: the same
// request gets the same answer. Free text starts with "[demo]"; enum and
// boolean values are picked from a hash of the request (so calls differ);
// numbers, integers and dates are null where allowed, because the demo
// invents no facts; quotes asked for by evidence are real transcript turns
// (demoQuotes). Usage is zero.
type Demo struct{}

// Complete answers the request without network.
func (Demo) Complete(ctx context.Context, req Request) (*Response, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := req.validate(); err != nil {
		return nil, fmt.Errorf("demo request: %w", err)
	}
	if req.Schema == nil {
		return &Response{Content: "[demo] no analysis: this answer comes from the offline demo model", Model: DemoModelName, FinishReason: "stop"}, nil
	}
	h := fnv.New64a()
	for _, m := range req.Messages {
		if m.Role == RoleUser {
			h.Write([]byte(m.Content))
		}
	}
	seed := h.Sum64()
	pick := func(path string) uint64 {
		p := fnv.New64a()
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], seed)
		p.Write(b[:])
		p.Write([]byte(path))
		return p.Sum64()
	}
	content, err := schemaexample.Generate(req.Schema.Definition, schemaexample.Choices{
		Null: func(_, typ string) bool {
			return typ == "number" || typ == "integer" || typ == "date"
		},
		String: func(path string) string { return "[demo] " + path + " (generated without a model)" },
		Enum:   func(path string, values []any) any { return values[pick(path)%uint64(len(values))] },
		// Three in four booleans are true so that demo QC scores look
		// plausible rather than random.
		Bool:    func(path string) bool { return pick(path)%4 != 0 },
		Date:    func(string) string { return "2000-01-01" },
		Number:  func(string) float64 { return 0 },
		Integer: func(string) int64 { return 0 },
	})
	if err == nil {
		content, err = demoQuotes(content, req, pick)
	}
	if err != nil {
		return nil, fmt.Errorf("demo answer: %w", err)
	}
	return &Response{Content: string(content), Model: DemoModelName, FinishReason: "stop"}, nil
}
