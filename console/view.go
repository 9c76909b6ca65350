package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/postcall/postcall/agent"
	"github.com/postcall/postcall/analysis"
	"github.com/postcall/postcall/call"
	"github.com/postcall/postcall/calldoc"
	"github.com/postcall/postcall/retention"
)

// The record's opaque keys (call.Record.Extra) have no fixed shape; the
// console reads the common spellings of each and shows a dash for what it
// does not find. README ("The console") lists the keys read.

// callView is everything the call page shows, from the call document.
type callView struct {
	Doc       *calldoc.Document
	Retention *retention.CallStatus
	Purged    bool

	Transfer  *transferView
	Timeline  []timelineEntry
	Tools     []toolView
	Knowledge []knowledgeView
	Turns     []turnView
	Latency   latencyView
	LiveUsage liveUsage
	Errors    []serviceErrorView
	Events    []string

	Fields  []fieldView
	QCItems []qcItemView
	Changes calldoc.Changes
	// Running is true while post-call processing is unfinished: the page
	// polls for progress.
	Running bool
}

type transferView struct {
	Status, Target, At, Reason, FromCall string
	Failed, ToHuman                      bool
}

type timelineEntry struct {
	// Kind is message, tool or search.
	Kind, Role, Text, At string
	// Anchor is a transcript turn's element id, turn-N with N its index in
	// the transcript (what evidence's turn counts); empty for the others.
	Anchor string
	tMs    float64
}

type toolView struct{ Name, Status, Duration, Detail string }

type knowledgeView struct{ Query, Hits, Latency, Cache string }

type turnView struct{ Turn, STT, RAG, Tool, LLM, TTS, Total, Tokens string }

type latencyView struct{ STT, LLM, RAG, Tool, TTS, Total string }

type liveUsage struct{ Prompt, Completion, TTSChars string }

type serviceErrorView struct {
	Service, Processor, At, Message string
	Fatal                           bool
}

type fieldView struct {
	Key, Value  string
	Disposition bool
	// Evidence is the value's quote; nil when the plan asks for none or
	// the value is null.
	Evidence *evidenceView
}

// evidenceView is a quote as postcall checked it against the transcript.
type evidenceView struct {
	Quote string
	// Turn is the anchor of the turn the quote starts in (turn-N); empty
	// when the quote was not found.
	Turn     string
	Verified bool
	// Withheld is, under analysis.evidence require, the value kept out of
	// the fields because its quote was not found; empty otherwise.
	Withheld string
}

type qcItemView struct {
	ID, Evidence  string
	Passed, Fatal bool
	// Checked is true when the plan's qc.evidence checked the quote;
	// Verified and Turn (turn-N, empty when not found) say what it found.
	Checked, Verified bool
	Turn              string
}

// newCallView reads the document; plan (may be nil) marks fatal QC items.
func newCallView(doc *calldoc.Document, st *retention.CallStatus, plan *agent.Plan) *callView {
	v := &callView{Doc: doc, Retention: st, Purged: doc.IsPurged, Changes: doc.Changes()}
	v.Running = !doc.Done
	v.Transfer = readTransfer(doc.Extra("transfer"))
	for i, t := range doc.Transcript {
		e := timelineEntry{Kind: "message", Role: string(t.Role), Text: t.Text, At: offset(t.TMs), Anchor: turnAnchor(&i), tMs: math.Inf(1)}
		if t.TMs != nil {
			e.tMs = float64(*t.TMs)
		}
		if t.Role == call.RoleTool {
			e.Kind = "tool"
			if e.Text == "" {
				e.Text = compactExtra(t.Extra)
			}
		}
		v.Timeline = append(v.Timeline, e)
	}
	for _, m := range objects(doc.Extra("tool_calls")) {
		tv := toolView{Name: str(m, "name", "function", "tool"), Status: str(m, "status", "outcome"),
			Duration: ms(m, "duration_ms", "latency_ms"), Detail: compact(m, "result", "output", "error")}
		v.Tools = append(v.Tools, tv)
		if t, ok := num(m, "t_ms", "at_ms", "offset_ms"); ok {
			v.Timeline = append(v.Timeline, timelineEntry{Kind: "tool", Text: tv.Name + " → " + tv.Status, At: offsetF(t), tMs: t})
		}
	}
	for _, m := range objects(doc.Extra("knowledge_retrievals")) {
		kv := knowledgeView{Query: str(m, "query", "q"), Latency: ms(m, "latency_ms", "duration_ms"), Cache: cacheStatus(m), Hits: "-"}
		if n, ok := num(m, "hit_count", "hits", "results"); ok {
			kv.Hits = strconv.FormatFloat(n, 'f', -1, 64)
		} else if arr := array(m, "hits", "results", "passages"); arr != nil {
			kv.Hits = strconv.Itoa(len(arr))
		}
		v.Knowledge = append(v.Knowledge, kv)
		if t, ok := num(m, "t_ms", "at_ms", "offset_ms"); ok {
			v.Timeline = append(v.Timeline, timelineEntry{Kind: "search", Text: kv.Query + " (" + kv.Hits + " hits)", At: offsetF(t), tMs: t})
		}
	}
	// Entries without a time keep their order, after those with one.
	sort.SliceStable(v.Timeline, func(i, j int) bool { return v.Timeline[i].tMs < v.Timeline[j].tMs })
	v.readTurns(objects(doc.Extra("turn_metrics")))
	for _, m := range objects(doc.Extra("service_errors")) {
		at := str(m, "at", "timestamp", "time")
		if t, ok := num(m, "t_ms", "offset_ms"); ok {
			at = offsetF(t)
		}
		fatal, _ := m["fatal"].(bool)
		v.Errors = append(v.Errors, serviceErrorView{Service: str(m, "service", "source"), Processor: str(m, "processor", "stage"),
			At: at, Message: str(m, "message", "error"), Fatal: fatal})
	}
	for _, raw := range rawArray(doc.Extra("events")) {
		v.Events = append(v.Events, string(raw))
	}
	if doc.Analysis != nil {
		var evidence map[string]analysis.Evidence
		_ = json.Unmarshal(doc.Analysis.Evidence, &evidence)
		keys, vals := calldoc.OrderedFields(doc.Analysis.Fields)
		for _, k := range keys {
			f := fieldView{Key: k, Value: display(vals[k]), Disposition: k == "disposition" || strings.HasSuffix(k, "_disposition")}
			if e, ok := evidence[k]; ok {
				f.Evidence = &evidenceView{Turn: turnAnchor(e.Turn), Verified: e.Verified}
				if e.Quote != nil {
					f.Evidence.Quote = *e.Quote
				}
				if e.Withheld != nil {
					raw, _ := json.Marshal(e.Withheld)
					f.Evidence.Withheld = display(raw)
				}
			}
			v.Fields = append(v.Fields, f)
		}
	}
	if doc.QC != nil {
		fatal := map[string]bool{}
		if plan != nil && plan.QC != nil {
			for _, it := range plan.QC.Checklist {
				fatal[it.ID] = it.Fatal
			}
		}
		var items []analysis.Verdict
		_ = json.Unmarshal(doc.QC.Items, &items)
		for _, it := range items {
			iv := qcItemView{ID: it.ID, Passed: it.Passed, Evidence: it.Evidence, Fatal: fatal[it.ID], Turn: turnAnchor(it.Turn)}
			if it.Verified != nil {
				iv.Checked, iv.Verified = true, *it.Verified
			}
			v.QCItems = append(v.QCItems, iv)
		}
	}
	return v
}

// turnAnchor is the element id of transcript turn *i; empty for nil.
func turnAnchor(i *int) string {
	if i == nil {
		return ""
	}
	return "turn-" + strconv.Itoa(*i)
}

func (v *callView) readTurns(turns []map[string]any) {
	var sums [6]float64
	var counts [6]int
	var prompt, completion, chars float64
	var havePrompt, haveCompletion, haveChars bool
	for i, m := range turns {
		vals := [6][]string{{"stt_ms", "stt"}, {"llm_ms", "llm"}, {"rag_ms", "rag"}, {"tool_ms", "tool"}, {"tts_ms", "tts"}, {"total_ms", "total"}}
		var got [6]string
		var total float64
		haveTotal := false
		for k, names := range vals {
			if n, ok := num(m, names...); ok {
				sums[k] += n
				counts[k]++
				got[k] = fmtMs(n)
				if k < 5 {
					total += n
				} else {
					haveTotal = true
				}
			} else {
				got[k] = "-"
			}
		}
		if !haveTotal && total > 0 {
			// A turn without its total: the sum of its stages.
			got[5] = fmtMs(total)
			sums[5] += total
			counts[5]++
		}
		tv := turnView{Turn: strconv.Itoa(i + 1), STT: got[0], LLM: got[1], RAG: got[2], Tool: got[3], TTS: got[4], Total: got[5], Tokens: "-"}
		if n, ok := num(m, "turn", "index"); ok {
			tv.Turn = strconv.FormatFloat(n, 'f', -1, 64)
		}
		p, okP := num(m, "prompt_tokens")
		c, okC := num(m, "completion_tokens")
		if okP {
			prompt, havePrompt = prompt+p, true
		}
		if okC {
			completion, haveCompletion = completion+c, true
		}
		if n, ok := num(m, "tts_chars", "tts_characters"); ok {
			chars, haveChars = chars+n, true
		}
		if n, ok := num(m, "tokens"); ok {
			tv.Tokens = strconv.FormatFloat(n, 'f', -1, 64)
		} else if okP || okC {
			tv.Tokens = strconv.FormatFloat(p+c, 'f', -1, 64)
		}
		v.Turns = append(v.Turns, tv)
	}
	avg := func(k int) string {
		if counts[k] == 0 {
			return "-"
		}
		return fmtMs(sums[k] / float64(counts[k]))
	}
	v.Latency = latencyView{STT: avg(0), LLM: avg(1), RAG: avg(2), Tool: avg(3), TTS: avg(4), Total: avg(5)}
	v.LiveUsage = liveUsage{Prompt: count(prompt, havePrompt), Completion: count(completion, haveCompletion), TTSChars: count(chars, haveChars)}
}

func readTransfer(raw json.RawMessage) *transferView {
	var m map[string]any
	if json.Unmarshal(raw, &m) != nil || m == nil {
		return nil
	}
	t := &transferView{Status: str(m, "status", "outcome"), Target: str(m, "target", "to", "destination"),
		Reason: str(m, "reason", "error"), FromCall: strOr(m, "", "from_call_id", "source_call_id")}
	t.At = str(m, "at", "transferred_at", "time")
	if n, ok := num(m, "t_ms", "at_ms"); ok {
		t.At = offsetF(n)
	}
	switch strings.ToLower(t.Status) {
	case "failed", "error", "not_connected":
		t.Failed = true
	}
	t.ToHuman, _ = m["to_human"].(bool)
	if h, _ := m["human"].(bool); h {
		t.ToHuman = true
	}
	return t
}

func cacheStatus(m map[string]any) string {
	if b, ok := m["cached"].(bool); ok {
		if b {
			return "hit"
		}
		return "miss"
	}
	return str(m, "cache", "cache_status")
}

func objects(raw json.RawMessage) []map[string]any {
	var out []map[string]any
	if json.Unmarshal(raw, &out) != nil {
		return nil
	}
	return out
}

func rawArray(raw json.RawMessage) []json.RawMessage {
	var out []json.RawMessage
	if json.Unmarshal(raw, &out) != nil {
		return nil
	}
	return out
}

func array(m map[string]any, keys ...string) []any {
	for _, k := range keys {
		if a, ok := m[k].([]any); ok {
			return a
		}
	}
	return nil
}

// str is the first of keys holding a string or number, else a dash.
func str(m map[string]any, keys ...string) string { return strOr(m, "-", keys...) }

func strOr(m map[string]any, def string, keys ...string) string {
	for _, k := range keys {
		switch x := m[k].(type) {
		case string:
			if x != "" {
				return x
			}
		case float64:
			return strconv.FormatFloat(x, 'f', -1, 64)
		case bool:
			return strconv.FormatBool(x)
		}
	}
	return def
}

func num(m map[string]any, keys ...string) (float64, bool) {
	for _, k := range keys {
		if x, ok := m[k].(float64); ok {
			return x, true
		}
	}
	return 0, false
}

func ms(m map[string]any, keys ...string) string {
	if n, ok := num(m, keys...); ok {
		return fmtMs(n)
	}
	return "-"
}

func fmtMs(n float64) string { return strconv.FormatFloat(math.Round(n), 'f', -1, 64) + " ms" }

func count(n float64, ok bool) string {
	if !ok {
		return "-"
	}
	return strconv.FormatFloat(n, 'f', -1, 64)
}

func compact(m map[string]any, keys ...string) string {
	for _, k := range keys {
		if x, ok := m[k]; ok && x != nil {
			if s, ok := x.(string); ok {
				return s
			}
			b, _ := json.Marshal(x)
			return string(b)
		}
	}
	return ""
}

func compactExtra(extra map[string]json.RawMessage) string {
	if len(extra) == 0 {
		return "-"
	}
	b, _ := json.Marshal(extra)
	return string(b)
}

// display is a field value for reading: strings unquoted, null a dash.
func display(v json.RawMessage) string {
	if len(v) == 0 || bytes.Equal(v, []byte("null")) {
		return "-"
	}
	var s string
	if json.Unmarshal(v, &s) == nil {
		if s == "" {
			return "-"
		}
		return s
	}
	return string(v)
}

func offset(tms *int64) string {
	if tms == nil {
		return ""
	}
	return offsetF(float64(*tms))
}

// offsetF is a time into the call as m:ss.
func offsetF(tms float64) string {
	s := int(tms / 1000)
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}

// duration is seed 001's Xm Ys.
func duration(sec *float64) string {
	if sec == nil {
		return "-"
	}
	s := int(math.Round(*sec))
	return fmt.Sprintf("%dm %ds", s/60, s%60)
}

// usd is a cost in US dollars to the microdollar, "unpriced" for nil (a
// model or tier without a price: never a guess).
func usd(v *float64) string {
	if v == nil {
		return "unpriced"
	}
	return fmt.Sprintf("$%.6f", *v)
}

func fmtTime(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}
