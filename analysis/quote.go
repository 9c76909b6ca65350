package analysis

import (
	"strings"
	"unicode"
)

// Quote matching: how postcall decides that a quote the model gave as
// evidence is in the transcript.
//
// Both the quote and the transcript are cut into tokens: runs of letters
// and digits, lower-cased, so case, whitespace and punctuation never count
// ("Yes, next Tuesday!" is "yes next tuesday"). The quote must then match a
// contiguous run of transcript tokens with at most one token edit (a word
// missing, added or changed) per QuoteTokensPerEdit tokens of the quote:
// speech-to-text noise such as "for" for "four" or a dropped "the" in a
// quote of ten words is accepted, a quote of fewer than QuoteTokensPerEdit
// tokens must match exactly, and a paraphrase, which changes most words, is
// rejected.
//
// A quote comes from one turn, or from consecutive turns of one speaker
// (speech-to-text often cuts one sentence into several turns); a quote that
// runs from one speaker's turn into another's is not a quote of anyone and
// is rejected. The turn recorded is the one the match starts in.

// QuoteTokensPerEdit is how many quote tokens buy one token edit.
const QuoteTokensPerEdit = 5

// quoteToken is one token of a transcript and the turn it is in.
type quoteToken struct {
	word string
	turn int
}

// FindQuote returns the index of the transcript turn where quote starts,
// and false when the quote is empty (no letters or digits) or not in the
// transcript as the rules above say.
func FindQuote(transcript []Turn, quote string) (int, bool) {
	return newQuoteIndex(transcript).find(quote)
}

// quoteIndex is a transcript's tokens, one block per speaker's run of
// consecutive turns (a quote may span turns of one speaker, never two), so
// that the quotes of one answer are matched without tokenizing the
// transcript again for each.
type quoteIndex [][]quoteToken

func newQuoteIndex(transcript []Turn) quoteIndex {
	var ix quoteIndex
	for start := 0; start < len(transcript); {
		end := start + 1
		for end < len(transcript) && transcript[end].Role == transcript[start].Role {
			end++
		}
		var block []quoteToken
		for i := start; i < end; i++ {
			for _, w := range quoteTokens(transcript[i].Text) {
				block = append(block, quoteToken{word: w, turn: i})
			}
		}
		ix = append(ix, block)
		start = end
	}
	return ix
}

// find is FindQuote over the index.
func (ix quoteIndex) find(quote string) (int, bool) {
	q := quoteTokens(quote)
	if len(q) == 0 {
		return 0, false
	}
	budget := len(q) / QuoteTokensPerEdit
	best, bestTurn, found := budget+1, 0, false
	for _, block := range ix {
		if cost, at, ok := matchTokens(q, block, best-1); ok && cost < best {
			best, bestTurn, found = cost, block[at].turn, true
			if cost == 0 {
				break
			}
		}
	}
	return bestTurn, found
}

// matchTokens finds the run of text tokens closest to q (fewest token
// edits, Sellers' approximate substring match) and returns its cost and
// the index of its first token, when the cost is at most budget.
func matchTokens(q []string, text []quoteToken, budget int) (cost, start int, ok bool) {
	if len(text) == 0 || budget < 0 {
		return 0, 0, false
	}
	// prev[j] is the cost of matching q[:i] ending after text[j-1];
	// starts[j] is where that match begins. A match may begin anywhere,
	// so row 0 is all zeros.
	prev, cur := make([]int, len(text)+1), make([]int, len(text)+1)
	prevStart, curStart := make([]int, len(text)+1), make([]int, len(text)+1)
	for j := range prevStart {
		prevStart[j] = j
	}
	for i := 1; i <= len(q); i++ {
		cur[0], curStart[0] = i, 0
		for j := 1; j <= len(text); j++ {
			sub := prev[j-1]
			if q[i-1] != text[j-1].word {
				sub++
			}
			c, s := sub, prevStart[j-1]
			if d := prev[j] + 1; d < c { // a quote token missing from the text
				c, s = d, prevStart[j]
			}
			if d := cur[j-1] + 1; d < c { // a text token missing from the quote
				c, s = d, curStart[j-1]
			}
			cur[j], curStart[j] = c, s
		}
		prev, cur = cur, prev
		prevStart, curStart = curStart, prevStart
	}
	best, at := budget+1, -1
	for j := 1; j <= len(text); j++ {
		if prev[j] < best && prevStart[j] < j {
			best, at = prev[j], prevStart[j]
		}
	}
	if at < 0 {
		return 0, 0, false
	}
	return best, at, true
}

// quoteTokens cuts s into lower-case runs of letters and digits.
func quoteTokens(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
}
