package call

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
)

// typedKeys are the keys the parser reads into typed fields, which
// MarshalJSON writes from those fields; an Extra entry with one of these
// names is never written, so a hand-built Extra cannot produce a duplicate
// key. They are found by parsing an empty record (the parser looks up every
// typed key, whatever it finds), so a key added to the parser needs no
// second list here.
var typedKeys = func() map[string]bool {
	p := &parser{asked: map[string]bool{}}
	p.record([]byte("{}"))
	return p.asked
}()

// MarshalJSON writes the record as one JSON object in the ingest format:
// the typed fields (absent ones omitted) followed by every Extra key in
// sorted order, so that ParseRecord reads back an equal record.
func (r Record) MarshalJSON() ([]byte, error) {
	var w objectWriter
	w.put(keyCallID, r.CallID)
	w.put(keyAgentID, r.AgentID)
	w.put(keyEndedAt, r.EndedAt)
	w.putString(keyEndedReason, r.EndedReason)
	w.putString(keyStatus, r.Status)
	w.putString(keyDirection, r.Direction)
	w.putString(keySource, r.Source)
	w.putString(keyCampaignID, r.CampaignID)
	if r.IsTest {
		w.put(keyIsTest, true)
	}
	w.putString(keyCustomerName, r.CustomerName)
	w.putString(keyCustomerRequest, r.CustomerRequest)
	w.putString(keyPhoneNumber, r.PhoneNumber)
	w.putString(keyCarrier, r.Carrier)
	w.putString(keyDID, r.DID)
	if r.StartedAt != nil {
		w.put(keyStartedAt, *r.StartedAt)
	}
	if r.AnsweredAt != nil {
		w.put(keyAnsweredAt, *r.AnsweredAt)
	}
	for _, f := range []struct {
		key string
		v   *int64
	}{{keyRingMs, r.RingMs}, {keyHoldMs, r.HoldMs}, {keyTalkMs, r.TalkMs}} {
		if f.v != nil {
			w.put(f.key, *f.v)
		}
	}
	if r.Duration != nil {
		w.put(keyDuration, *r.Duration)
	}
	w.putString(keyDisconnectedBy, r.DisconnectedBy)
	if len(r.Transcript) > 0 {
		w.putRaw(keyTranscript, marshalTurns(r.Transcript, &w.err))
	}
	w.putString(keyRecordingKey, r.RecordingKey)
	w.putRaw(keyContactData, r.ContactData)
	w.putRaw(keyFunctionOutput, r.FunctionOutput)
	w.putExtra(r.Extra, typedKeys)
	return w.finish()
}

// marshalTurns writes the transcript array itself: json.Marshal would pass
// each turn's output through its HTML escaping and change Extra values.
func marshalTurns(turns []Turn, errp *error) json.RawMessage {
	if *errp != nil {
		return nil
	}
	var b bytes.Buffer
	b.WriteByte('[')
	for i, t := range turns {
		if i > 0 {
			b.WriteByte(',')
		}
		tb, err := t.MarshalJSON()
		if err != nil {
			*errp = fmt.Errorf("encode transcript[%d]: %w", i, err)
			return nil
		}
		b.Write(tb)
	}
	b.WriteByte(']')
	return b.Bytes()
}

// turnKeys are the keys Turn's typed fields own.
var turnKeys = map[string]bool{"role": true, "text": true, "t_ms": true}

// MarshalJSON writes the turn with its Extra keys next to role, text and
// t_ms.
func (t Turn) MarshalJSON() ([]byte, error) {
	var w objectWriter
	w.put("role", t.Role)
	w.put("text", t.Text)
	if t.TMs != nil {
		w.put("t_ms", *t.TMs)
	}
	w.putExtra(t.Extra, turnKeys)
	return w.finish()
}

// objectWriter builds a JSON object key by key, keeping the first error.
type objectWriter struct {
	buf bytes.Buffer
	err error
}

func (w *objectWriter) key(k string) {
	if w.buf.Len() == 0 {
		w.buf.WriteByte('{')
	} else {
		w.buf.WriteByte(',')
	}
	kb, _ := json.Marshal(k) // a string always marshals
	w.buf.Write(kb)
	w.buf.WriteByte(':')
}

func (w *objectWriter) put(k string, v any) {
	if w.err != nil {
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		w.err = fmt.Errorf("encode %s: %w", k, err)
		return
	}
	w.key(k)
	w.buf.Write(b)
}

func (w *objectWriter) putString(k, v string) {
	if v != "" {
		w.put(k, v)
	}
}

// putRaw writes raw JSON as it is: marshalling it through encoding/json
// would re-escape it (e.g. "<" as \u003c) and break byte-exact round trips.
func (w *objectWriter) putRaw(k string, raw json.RawMessage) {
	if w.err != nil || len(raw) == 0 {
		return
	}
	if !json.Valid(raw) {
		w.err = fmt.Errorf("encode %s: invalid JSON value", k)
		return
	}
	w.key(k)
	w.buf.Write(raw)
}

func (w *objectWriter) putExtra(extra map[string]json.RawMessage, skip map[string]bool) {
	keys := make([]string, 0, len(extra))
	for k := range extra {
		if !skip[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		if len(extra[k]) == 0 {
			// An empty RawMessage is no JSON value; null is the closest.
			w.putRaw(k, json.RawMessage("null"))
			continue
		}
		w.putRaw(k, extra[k])
	}
}

func (w *objectWriter) finish() ([]byte, error) {
	if w.err != nil {
		return nil, w.err
	}
	if w.buf.Len() == 0 {
		return []byte("{}"), nil
	}
	w.buf.WriteByte('}')
	return w.buf.Bytes(), nil
}
