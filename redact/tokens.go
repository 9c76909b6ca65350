package redact

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// tokKind is what a token is made of.
type tokKind uint8

const (
	tokWord  tokKind = iota // letters (and apostrophes inside them)
	tokNum                  // ASCII digits
	tokPunct                // one other character
)

// token is one word, digit string or punctuation character of a turn.
type token struct {
	// text is the word (in lower case when it is in the vocabulary), the
	// digits, or the character.
	text string
	// turn is the index of the turn in the transcript; start and end are
	// byte offsets in its text. 32 bits keep a token small: a transcript
	// has thousands.
	turn, start, end int32
	info             wordInfo
	kind             tokKind
	// glued is true when nothing separates the token from the one before
	// it in the same turn ("dana.smith", "4111-1111").
	glued bool
	// claimed is set once a detector has taken the token.
	claimed bool
}

// tokenize appends the tokens of one turn's text.
func tokenize(toks []token, turn int32, s string) []token {
	glued := false
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
			glued = false
			continue
		case c >= '0' && c <= '9':
			j := i + 1
			for j < len(s) && s[j] >= '0' && s[j] <= '9' {
				j++
			}
			toks = append(toks, token{kind: tokNum, glued: glued, turn: turn, start: int32(i), end: int32(j), text: s[i:j]})
			i = j
		case c < utf8.RuneSelf && !isASCIILetter(c):
			toks = append(toks, token{kind: tokPunct, glued: glued, turn: turn, start: int32(i), end: int32(i + 1), text: s[i : i+1]})
			i++
		default:
			j, upper := i, false
			for j < len(s) {
				r, size := rune(s[j]), 1
				if r >= utf8.RuneSelf {
					r, size = utf8.DecodeRuneInString(s[j:])
				}
				if r == '\'' && j > i && j+1 < len(s) && isASCIILetter(s[j+1]) {
					j++
					continue
				}
				if r < utf8.RuneSelf {
					if !isASCIILetter(byte(r)) {
						break
					}
					upper = upper || (r >= 'A' && r <= 'Z')
				} else if !unicode.IsLetter(r) {
					break
				} else {
					upper = true // let ToLower handle it
				}
				j += size
			}
			if j == i {
				// A non-letter rune outside ASCII: punctuation.
				_, size := utf8.DecodeRuneInString(s[i:])
				j = i + size
				toks = append(toks, token{kind: tokPunct, glued: glued, turn: turn, start: int32(i), end: int32(j), text: s[i:j]})
				i = j
				break
			}
			// Vocabulary words get their lower-case spelling; other words
			// keep the case they were written in (no allocation), and the
			// few checks of them that care fold case themselves.
			text := s[i:j]
			var info wordInfo
			if v := lookupWord(text, upper); v != nil {
				text, info = v.name, v.info
			}
			toks = append(toks, token{kind: tokWord, glued: glued, turn: turn, start: int32(i), end: int32(j), text: text, info: info})
			i = j
		}
		glued = true
	}
	return toks
}

// lookupWord finds a word of the vocabulary in any case.
func lookupWord(text string, upper bool) *vocab {
	if !upper {
		return words[text]
	}
	var buf [24]byte
	if len(text) > len(buf) {
		return words[strings.ToLower(text)]
	}
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		case c >= utf8.RuneSelf:
			return words[strings.ToLower(text)]
		}
		buf[i] = c
	}
	return words[string(buf[:len(text)])]
}

func isASCIILetter(c byte) bool {
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

// isSeparator reports whether tok may sit between the parts of one number
// ("4111-1111", "(415) 555", "one, two", "one uh two").
func isSeparator(tok *token) bool {
	switch tok.kind {
	case tokPunct:
		switch tok.text {
		case "-", ".", ",", "/", "(", ")", "–", "—":
			return true
		}
	case tokWord:
		return tok.info.filler
	}
	return false
}
