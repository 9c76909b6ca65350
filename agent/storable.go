package agent

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// storableStrings refuses a plan (its canonical JSON) holding a NUL
// character in any key or value: PostgreSQL's jsonb, where plans are
// stored, cannot hold one, and the plan would fail with a database error.
func storableStrings(canonical []byte) error {
	var v any
	if err := json.Unmarshal(canonical, &v); err != nil {
		return fmt.Errorf("encode plan: %w", err)
	}
	if path := nulPath(v, ""); path != "" {
		return fmt.Errorf("%s: must not contain NUL characters", path)
	}
	return nil
}

// nulPath is the path of the first string of v (in key order) holding a
// NUL, or "".
func nulPath(v any, path string) string {
	switch x := v.(type) {
	case string:
		if strings.IndexByte(x, 0) >= 0 {
			return path
		}
	case []any:
		for i, e := range x {
			if p := nulPath(e, fmt.Sprintf("%s[%d]", path, i)); p != "" {
				return p
			}
		}
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p := strings.TrimPrefix(path+"."+k, ".")
			if strings.IndexByte(k, 0) >= 0 {
				return p
			}
			if p := nulPath(x[k], p); p != "" {
				return p
			}
		}
	}
	return ""
}
