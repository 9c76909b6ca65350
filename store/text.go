package store

import (
	"strings"
	"unicode/utf8"
)

// IsText reports whether PostgreSQL's text can hold s: valid UTF-8 without
// NUL. Every call_id, agent id and other value postcall stores is text
// (ingest refuses the rest), so a reference or filter that is not names
// nothing stored.
func IsText(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

// storableText is s as a PostgreSQL text column can hold it: invalid UTF-8
// replaced by U+FFFD and NUL (which text refuses) removed. It is for texts
// postcall stores but does not own (a provider's model name or error
// message): refusing those would lose the record of a request already paid
// for.
func storableText(s string) string {
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
}
