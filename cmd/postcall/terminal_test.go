package main

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTerminalSafeEscapesWhatATerminalActsOn(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"completed\x1b]52;c;SGVsbG8=\x07":  `completed\u001b]52;c;SGVsbG8=\u0007`,
		"csi \u009b2J and del \x7f":        `csi \u009b2J and del \u007f`,
		"bad \xff byte":                    `bad \xff byte`,
		"tab\tnewline\ncr\r stay":          "tab\tnewline\ncr\r stay",
		"unicode stays: café ☎ \U0001F600": "unicode stays: café ☎ \U0001F600",
	} {
		var out bytes.Buffer
		w := newTerminalSafe(&out)
		_, err := w.Write([]byte(in))
		require.NoError(t, err)
		require.NoError(t, w.Flush())
		require.Equal(t, want, out.String())
	}
}

func TestTerminalSafeJoinsACharacterSplitAcrossWrites(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	w := newTerminalSafe(&out)
	smile := []byte("\U0001F600")
	_, _ = w.Write(append([]byte("a"), smile[:2]...))
	_, _ = w.Write(append(smile[2:], 'b'))
	_, _ = w.Write([]byte{0xe2, 0x98}) // never finished
	require.NoError(t, w.Flush())
	require.Equal(t, "a\U0001F600b\\xe2\\x98", out.String())
}

func TestTerminalSafeKeepsJSONValid(t *testing.T) {
	t.Parallel()
	doc, err := json.Marshal(map[string]string{"status": "x\u009b\x7fy"})
	require.NoError(t, err)
	var out bytes.Buffer
	_, err = newTerminalSafe(&out).Write(doc)
	require.NoError(t, err)
	var back map[string]string
	require.NoError(t, json.Unmarshal(out.Bytes(), &back))
	require.Equal(t, "x\u009b\x7fy", back["status"])
	require.NotContains(t, out.String(), "\u009b")
}
