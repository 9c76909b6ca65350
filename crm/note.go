package crm

import (
	"encoding/json"
	"fmt"
	"html"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// demoNotice opens every CRM note of a demo result.
const demoNotice = "DEMO: produced by a demo model, not a real analysis."

// noteLine is one "Label: value" line of a CRM note.
type noteLine struct {
	label string
	value string
	link  bool // value is an http(s) URL to render as a link
}

// maxFieldChars bounds one value in a note; maxNoteChars bounds the whole
// note (HubSpot's hs_call_body holds 65,536 characters).
const (
	maxFieldChars = 2000
	maxNoteChars  = 60000
)

// noteTitle is the one-line title of a CRM call or note.
func (r *CallResult) noteTitle() string {
	t := "AI call"
	if r.Disposition != "" {
		t += ": " + r.Disposition
	}
	if r.Demo {
		t = "[DEMO] " + t
	}
	return t
}

// noteLines is the content of a CRM note, shared by every CRM so that they
// read alike.
func (r *CallResult) noteLines(c *common) []noteLine {
	var lines []noteLine
	add := func(label, value string) {
		if value != "" {
			lines = append(lines, noteLine{label: label, value: truncate(value, maxFieldChars)})
		}
	}
	if r.Demo {
		add("Notice", demoNotice)
	}
	if r.CallSummary != nil {
		add("Summary", *r.CallSummary)
	}
	disp := r.Disposition
	if disp != "" && r.DispositionSource != "" {
		disp += " (" + r.DispositionSource + ")"
	}
	add("Disposition", disp)
	if r.GeneralSuccess != nil {
		add("Success", yesNo(*r.GeneralSuccess))
	}
	if r.FinalScore != nil {
		add("QC score", strconv.Itoa(*r.FinalScore)+"/10")
	}
	add("Direction", r.Direction)
	if r.Duration > 0 {
		add("Duration", r.Duration.Round(time.Second).String())
	}
	add("Ended reason", r.EndedReason)
	for _, f := range r.selectFields(c) {
		if v := formatValue(f.value); v != "" && r.unverified(f.name) {
			add(f.name, v+unverifiedNote)
		} else {
			add(f.name, v)
		}
	}
	if link := r.recordingLink(c); link != "" {
		lines = append(lines, noteLine{label: "Recording", value: link, link: true})
	}
	add("Call ID", r.CallID)
	return lines
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// formatValue renders an analysis value for a human; nil renders empty, and
// empty lines are dropped.
func formatValue(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case bool:
		return yesNo(v)
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case json.Number:
		return v.String()
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func truncate(s string, max int) string {
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	r := []rune(s)
	return string(r[:max-1]) + "…"
}

// noteText renders lines as plain text (GoHighLevel notes).
func noteText(title string, lines []noteLine) string {
	var b strings.Builder
	b.WriteString(title)
	b.WriteString("\n")
	for _, l := range lines {
		b.WriteString(l.label)
		b.WriteString(": ")
		b.WriteString(l.value)
		b.WriteString("\n")
	}
	return truncate(strings.TrimSuffix(b.String(), "\n"), maxNoteChars)
}

// noteHTML renders lines as escaped HTML (HubSpot call bodies and Pipedrive
// notes, which both take rich text). Truncation happens per line so that a
// cut never leaves a broken tag.
func noteHTML(title string, lines []noteLine) string {
	var b strings.Builder
	if title != "" {
		b.WriteString("<p><strong>" + html.EscapeString(title) + "</strong></p>")
	}
	for _, l := range lines {
		var line string
		if l.link {
			esc := html.EscapeString(l.value)
			line = "<p><strong>" + html.EscapeString(l.label) + ":</strong> <a href=\"" + esc + "\">" + esc + "</a></p>"
		} else {
			line = "<p><strong>" + html.EscapeString(l.label) + ":</strong> " +
				strings.ReplaceAll(html.EscapeString(l.value), "\n", "<br>") + "</p>"
		}
		if b.Len()+len(line) > maxNoteChars {
			break
		}
		b.WriteString(line)
	}
	return b.String()
}
