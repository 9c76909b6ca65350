package store

import "strings"

// storableText is s as a PostgreSQL text column can hold it: invalid UTF-8
// replaced by U+FFFD and NUL (which text refuses) removed. It is for texts
// postcall stores but does not own (a provider's model name or error
// message): refusing those would lose the record of a request already paid
// for.
func storableText(s string) string {
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
}
