package analysis

import (
	"strings"
	"time"
)

// demoCall is what the demo model reads of a request's call message: the
// facts it dates things by and the transcript. The demo sees what a real
// model sees (the rendered messages), so it can never rely on anything the
// prompt leaves out.
type demoCall struct {
	// Day is the call's date (started_at, else ended_at, in UTC); zero when
	// the message gives neither. Weekdays and "tomorrow" are read against it.
	Day          time.Time
	CustomerName string
	Turns        []Turn
}

// readCallMessage parses the format callMessage writes: "## Call" with
// "- name: value" facts, optional JSON sections, then "## Transcript" with
// one "[m:ss] role: text" line per turn. Every value in it is one line
// (callMessage folds them), so the transcript header is the first line
// reading "## Transcript".
func readCallMessage(msg string) demoCall {
	var c demoCall
	head, transcript, _ := strings.Cut(msg, "\n## Transcript\n")
	var started, ended time.Time
	for line := range strings.SplitSeq(head, "\n") {
		name, value, ok := strings.Cut(strings.TrimPrefix(line, "- "), ": ")
		if !ok || !strings.HasPrefix(line, "- ") {
			continue
		}
		switch name {
		case "started_at":
			started, _ = time.Parse(time.RFC3339, value)
		case "ended_at":
			ended, _ = time.Parse(time.RFC3339, value)
		case "customer_name":
			c.CustomerName = value
		}
	}
	switch {
	case !started.IsZero():
		c.Day = started.UTC().Truncate(24 * time.Hour)
	case !ended.IsZero():
		c.Day = ended.UTC().Truncate(24 * time.Hour)
	}
	for line := range strings.SplitSeq(transcript, "\n") {
		if t, ok := readTurnLine(line); ok {
			c.Turns = append(c.Turns, t)
		}
	}
	return c
}

// readTurnLine parses "[m:ss] role: text" (the clock is optional).
func readTurnLine(line string) (Turn, bool) {
	var t Turn
	if rest, ok := strings.CutPrefix(line, "["); ok {
		clockText, after, ok := strings.Cut(rest, "] ")
		if !ok {
			return t, false
		}
		ms, ok := readClock(clockText)
		if !ok {
			return t, false
		}
		t.TMs = &ms
		line = after
	}
	role, text, ok := strings.Cut(line, ": ")
	if !ok {
		// A turn with empty text is written "role: " and the trailing
		// space survives; anything else is not a turn line.
		role, ok = strings.CutSuffix(line, ":")
		if !ok || role == "" || strings.Contains(role, " ") {
			return t, false
		}
	}
	if role == "" || strings.Contains(role, " ") {
		return t, false
	}
	t.Role, t.Text = role, text
	return t, true
}

// readClock parses clock's m:ss or h:mm:ss into milliseconds.
func readClock(s string) (int64, bool) {
	var total int64
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return 0, false
	}
	for _, p := range parts {
		if p == "" {
			return 0, false
		}
		var n int64
		for _, r := range p {
			if r < '0' || r > '9' {
				return 0, false
			}
			n = n*10 + int64(r-'0')
		}
		total = total*60 + n
	}
	return total * 1000, true
}
