package main

import (
	"bytes"
	"encoding/json"
	"io"
)

// maxIndentDepth is the deepest document show --json indents. Indenting
// costs the square of the nesting depth (each level indents every line
// below it), so a deeper document (a record stored before ingest bounded
// nesting at call.MaxDepth) is printed compact, on one line.
const maxIndentDepth = 64

// writeDocumentJSON writes v as JSON and a newline: indented by two spaces,
// or compact when it nests deeper than maxIndentDepth.
func writeDocumentJSON(w io.Writer, v any) error {
	compact, err := json.Marshal(v)
	if err != nil {
		return err
	}
	out := compact
	if jsonDepth(compact) <= maxIndentDepth {
		var indented bytes.Buffer
		if err := json.Indent(&indented, compact, "", "  "); err != nil {
			return err
		}
		out = indented.Bytes()
	}
	_, err = w.Write(append(out, '\n'))
	return err
}

// jsonDepth is the deepest nesting of objects and arrays in valid JSON.
func jsonDepth(data []byte) int {
	depth, deepest, inString := 0, 0, false
	for i := 0; i < len(data); i++ {
		switch c := data[i]; {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			depth++
			deepest = max(deepest, depth)
		case c == '}' || c == ']':
			depth--
		}
	}
	return deepest
}
