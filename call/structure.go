package call

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// MaxDepth is the deepest nesting of objects and arrays a call record may
// have, the record itself being level 1 (contact_data's own keys are at
// level 2). Deeper records are refused: they serve no platform we know, and
// every reader of a deeply nested document (an indenting printer, a CRM)
// pays for the depth again.
const MaxDepth = 32

// structureProblems reports what encoding/json accepts in a syntactically
// valid JSON record but postcall must not: nesting deeper than MaxDepth, a
// key given twice in one object (encoding/json keeps the last value
// silently) and an escaped lone UTF-16 surrogate (PostgreSQL's jsonb refuses
// it; a typed string would get U+FFFD silently). Each problem names where it
// is, as a path of keys and array indexes.
func structureProblems(data []byte) []Problem {
	s := structureScanner{data: data}
	s.scan()
	return s.problems
}

type structureScanner struct {
	data     []byte
	stack    []container
	problems []Problem
	tooDeep  bool
}

// container is an object or array being scanned.
type container struct {
	object bool
	// expectKey: the next string is a key (objects only).
	expectKey bool
	// key is the current key of an object, index the current index of an
	// array.
	key   string
	index int
	// keys are the object's keys so far: a slice while the object is small,
	// a set beyond.
	keys []string
	set  map[string]bool
}

func (s *structureScanner) scan() {
	for i := 0; i < len(s.data); i++ {
		switch s.data[i] {
		case '{', '[':
			if len(s.stack) >= MaxDepth && !s.tooDeep {
				s.tooDeep = true
				s.problems = append(s.problems, Problem{Field: s.path(), Message: fmt.Sprintf("nested deeper than %d levels", MaxDepth)})
			}
			s.stack = append(s.stack, container{object: s.data[i] == '{', expectKey: s.data[i] == '{'})
		case '}', ']':
			s.stack = s.stack[:len(s.stack)-1]
		case ',':
			if top := s.top(); top != nil {
				if top.object {
					top.expectKey = true
				} else {
					top.index++
				}
			}
		case '"':
			end, lone := s.stringEnd(i)
			raw := s.data[i : end+1]
			if top := s.top(); top != nil && top.object && top.expectKey {
				top.expectKey = false
				top.key = decodeKey(raw)
				if lone {
					s.problems = append(s.problems, Problem{Field: s.path(), Message: "key holds a lone UTF-16 surrogate escape (not a character)"})
				}
				if top.seen(top.key) {
					s.problems = append(s.problems, Problem{Field: s.path(), Message: "key given twice in one object"})
				}
			} else if lone {
				s.problems = append(s.problems, Problem{Field: s.path(), Message: "holds a lone UTF-16 surrogate escape (not a character)"})
			}
			i = end
		}
	}
}

func (s *structureScanner) top() *container {
	if len(s.stack) == 0 {
		return nil
	}
	return &s.stack[len(s.stack)-1]
}

// path names the current position: keys joined by dots, [n] for array
// elements; "" for the record itself.
func (s *structureScanner) path() string {
	var b strings.Builder
	for i, c := range s.stack {
		if !c.object {
			b.WriteString("[" + strconv.Itoa(c.index) + "]")
			continue
		}
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(c.key)
	}
	return b.String()
}

// seen records key in the object's keys and reports whether it was there.
func (c *container) seen(key string) bool {
	if c.set != nil {
		if c.set[key] {
			return true
		}
		c.set[key] = true
		return false
	}
	for _, k := range c.keys {
		if k == key {
			return true
		}
	}
	c.keys = append(c.keys, key)
	if len(c.keys) > 16 {
		c.set = make(map[string]bool, 2*len(c.keys))
		for _, k := range c.keys {
			c.set[k] = true
		}
		c.keys = nil
	}
	return false
}

// stringEnd returns the index of the closing quote of the string starting
// at i, and whether it holds an escaped lone surrogate.
func (s *structureScanner) stringEnd(i int) (end int, lone bool) {
	d := s.data
	highPending := false // the previous escape was a high surrogate
	for j := i + 1; j < len(d); j++ {
		switch d[j] {
		case '"':
			return j, lone || highPending
		case '\\':
			if j+1 < len(d) && d[j+1] == 'u' && j+5 < len(d) {
				v, err := strconv.ParseUint(string(d[j+2:j+6]), 16, 32)
				switch {
				case err != nil:
				case v >= 0xD800 && v <= 0xDBFF:
					lone = lone || highPending
					highPending = true
				case v >= 0xDC00 && v <= 0xDFFF:
					if !highPending {
						lone = true
					}
					highPending = false
				default:
					lone = lone || highPending
					highPending = false
				}
				j += 5
				continue
			}
			lone = lone || highPending
			highPending = false
			j++ // the escaped character
		default:
			lone = lone || highPending
			highPending = false
		}
	}
	return len(d) - 1, lone || highPending
}

// decodeKey is a JSON string's value (raw with its quotes).
func decodeKey(raw []byte) string {
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1])
	}
	var k string
	if err := json.Unmarshal(raw, &k); err != nil {
		return string(raw[1 : len(raw)-1])
	}
	return k
}
