package analysis

import (
	"encoding/json"
	"strings"
)

// demoQuotes gives every quote of a demo answer (the quote of a
// {quote, value} field with evidence, of a {quote, passed} QC item) the
// text of a real turn of the request's transcript, picked by pick, so that
// demo evidence is verified like a real model's; a null value keeps a null
// quote. An answer without quotes, or a request without turns, is returned
// as it is.
func demoQuotes(content []byte, req Request, pick func(path string) uint64) ([]byte, error) {
	turns := transcriptTexts(req)
	if len(turns) == 0 {
		return content, nil
	}
	var answer map[string]json.RawMessage
	if err := json.Unmarshal(content, &answer); err != nil {
		return content, nil // not an object: nothing quoted
	}
	changed := false
	for key, raw := range answer {
		var obj map[string]any
		if json.Unmarshal(raw, &obj) != nil || obj == nil {
			continue
		}
		if _, ok := obj["quote"]; !ok {
			continue
		}
		value, hasValue := obj["value"]
		if hasValue && value == nil {
			obj["quote"] = nil
		} else {
			obj["quote"] = turns[pick(key+".quote")%uint64(len(turns))]
		}
		b, err := json.Marshal(obj)
		if err != nil {
			return nil, err
		}
		answer[key], changed = b, true
	}
	if !changed {
		return content, nil
	}
	return json.Marshal(answer)
}

// transcriptTexts reads the turns' texts back from the request's call
// message (callMessage's "## Transcript" section: "[m:ss] role: text").
func transcriptTexts(req Request) []string {
	var texts []string
	for _, m := range req.Messages {
		if m.Role != RoleUser {
			continue
		}
		_, section, ok := strings.Cut(m.Content, "\n## Transcript\n")
		if !ok {
			continue
		}
		for _, line := range strings.Split(section, "\n") {
			if strings.HasPrefix(line, "[") {
				if _, rest, ok := strings.Cut(line, "] "); ok {
					line = rest
				}
			}
			if _, text, ok := strings.Cut(line, ": "); ok && strings.TrimSpace(text) != "" {
				texts = append(texts, text)
			}
		}
		break
	}
	return texts
}
