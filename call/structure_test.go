package call

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestParseRefusesWhatPostgreSQLOrAReaderWouldGetWrong: lone UTF-16
// surrogates (jsonb refuses them: the API answered 500; typed strings got
// U+FFFD silently), duplicate keys (the last value won silently) and
// nesting deeper than MaxDepth (show --json grew with the square of the
// depth) are refused, naming where they are.
func TestParseRefusesWhatPostgreSQLOrAReaderWouldGetWrong(t *testing.T) {
	t.Parallel()
	nested := func(levels int) string {
		return strings.Repeat(`{"a":`, levels) + "1" + strings.Repeat("}", levels)
	}
	cases := map[string]struct {
		record string
		want   []string
	}{
		"lone low surrogate in an unknown key": {with(t, "x", `"\udfff"`),
			[]string{"x: holds a lone UTF-16 surrogate escape (not a character)"}},
		"lone high surrogate in contact_data": {with(t, "contact_data", `{"name": "a\ud800b"}`),
			[]string{"contact_data.name: holds a lone UTF-16 surrogate escape (not a character)"}},
		"high surrogate at the end of a string": {with(t, "tool_calls", `[{"args": "\ud83d"}]`),
			[]string{"tool_calls[0].args: holds a lone UTF-16 surrogate escape (not a character)"}},
		"two high surrogates": {with(t, "customer_name", `"\ud83d\ud83d"`),
			[]string{"customer_name: holds a lone UTF-16 surrogate escape (not a character)"}},
		"lone surrogate in a typed string": {with(t, "customer_name", `"Ann \udfff"`),
			[]string{"customer_name: holds a lone UTF-16 surrogate escape (not a character)"}},
		"lone surrogate in a transcript extra": {with(t, "transcript", `[{"role": "user", "text": "hi", "meta": "\udc00"}]`),
			[]string{"transcript[0].meta: holds a lone UTF-16 surrogate escape (not a character)"}},
		"lone surrogate in a string transcript": {with(t, "transcript", `"[{\"role\": \"user\", \"text\": \"\\udc00\"}]"`),
			[]string{"transcript[0].text: holds a lone UTF-16 surrogate escape (not a character)"}},
		"lone surrogate in a key": {with(t, "contact_data", `{"\udc00": 1}`),
			[]string{"contact_data.\ufffd: key holds a lone UTF-16 surrogate escape (not a character)"}},
		"duplicate top-level key": {strings.Replace(minimal, `"call_id":"c1"`, `"call_id":"A","call_id":"B"`, 1),
			[]string{"call_id: key given twice in one object"}},
		"duplicate nested key": {with(t, "contact_data", `{"id": 1, "x": {"k": 1, "k": 2}}`),
			[]string{"contact_data.x.k: key given twice in one object"}},
		"too deep": {with(t, "contact_data", nested(MaxDepth)),
			[]string{fmt.Sprintf("contact_data%s: nested deeper than %d levels", strings.Repeat(".a", MaxDepth-1), MaxDepth)}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, c.want, problems(t, c.record))
		})
	}
}

func TestParseAcceptsWhatLooksLikeItButIsNot(t *testing.T) {
	t.Parallel()
	for name, rec := range map[string]string{
		"a surrogate pair":                     with(t, "customer_name", `"smile \ud83d\ude00"`),
		"an escaped backslash before u":        with(t, "contact_data", `{"path": "C:\\udfff"}`),
		"the same key in different objects":    with(t, "tool_calls", `[{"id": 1}, {"id": 2}]`),
		"the deepest nesting allowed":          with(t, "contact_data", strings.Repeat(`{"a":`, MaxDepth-1)+"1"+strings.Repeat("}", MaxDepth-1)),
		"many keys in one object":              with(t, "contact_data", manyKeys(100)),
		"a key equal to a value in its object": with(t, "contact_data", `{"a": "a"}`),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			mustParse(t, rec)
		})
	}
}

func manyKeys(n int) string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf(`"k%d": %d`, i, i)
	}
	return "{" + strings.Join(keys, ", ") + "}"
}

func TestParseManyKeysWithADuplicateFarApart(t *testing.T) {
	t.Parallel()
	obj := strings.TrimSuffix(manyKeys(100), "}") + `, "k3": 0}`
	require.Equal(t, []string{"contact_data.k3: key given twice in one object"}, problems(t, with(t, "contact_data", obj)))
}
