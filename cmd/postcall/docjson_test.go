package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDocumentJSONDoesNotGrowWithTheSquareOfDepth: a 9,000-level nested
// value (stored before ingest bounded nesting) printed 810 MB for a 270 KB
// record when indented; it is printed compact instead.
func TestDocumentJSONDoesNotGrowWithTheSquareOfDepth(t *testing.T) {
	t.Parallel()
	deep := json.RawMessage(strings.Repeat(`{"a":`, 9000) + "1" + strings.Repeat("}", 9000))
	var out bytes.Buffer
	require.NoError(t, writeDocumentJSON(&out, map[string]any{"contact_data": deep}))
	require.Less(t, out.Len(), 2*len(deep), "printed compact")
	require.True(t, json.Valid(out.Bytes()))

	out.Reset()
	require.NoError(t, writeDocumentJSON(&out, map[string]any{"a": []int{1}, "b": `"{[`}))
	require.Equal(t, "{\n  \"a\": [\n    1\n  ],\n  \"b\": \"\\\"{[\"\n}\n", out.String(), "a shallow document is indented")
}
