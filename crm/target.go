// Package crm delivers a call's post-call results to the integrations an
// agent's plan lists: signed Standard Webhooks, HubSpot call engagements,
// GoHighLevel contact notes and Pipedrive notes. What is delivered about a
// call is a CallResult (result.go); the webhook body (payload.go) and the
// CRM note (note.go) are rendered from it. A new CRM is a new Target in a
// file of its own, parsed in target.go.
//
// The package is the HTTP side only. It parses integration settings into a
// Target, turns a CallResult into the requests each integration expects, sends
// them through a client that refuses private addresses, and classifies the
// answer as an Attempt (delivered, retry, permanent or disable). Persisting
// attempts, scheduling retries (see RetryDelay and MaxAttempts) and disabling
// integrations (see ShouldDisable) are the caller's job.
//
// Secrets (webhook secrets, API tokens, custom header values) never appear in
// errors, in Attempt.Err or in a Target's String. The package does not log.
package crm

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/postcall/postcall/agent"
)

// Integration types accepted by Parse (the `type` key of an integration).
const (
	TypeWebhook     = "webhook"
	TypeHubSpot     = "hubspot"
	TypeGoHighLevel = "gohighlevel"
	TypePipedrive   = "pipedrive"
)

// Default API roots; each integration's `base_url` setting overrides its own,
// which is how tests point them at a local server.
const (
	DefaultHubSpotBaseURL     = "https://api.hubapi.com"
	DefaultGoHighLevelBaseURL = "https://services.leadconnectorhq.com"
	DefaultPipedriveBaseURL   = "https://api.pipedrive.com"
)

// Recording link modes (the `recording_link` setting).
const (
	// RecordingLinkInclude puts CallResult.RecordingURL into the payload or
	// note when it is set. The default.
	RecordingLinkInclude = "link"
	// RecordingLinkNone never sends a recording link.
	RecordingLinkNone = "none"
)

// Target is one parsed, validated integration, ready for Deliverer.Deliver.
// Its String shows the type, name and host only: never a secret, a path or a
// query (webhook URLs often carry a token in their path).
type Target interface {
	// Name is the integration's unique name within its plan.
	Name() string
	// Type is one of TypeWebhook, TypeHubSpot, TypeGoHighLevel, TypePipedrive.
	Type() string
	// String describes the target without secrets.
	String() string

	// deliver sends one attempt; unexported so that only this package
	// implements Target.
	deliver(d *Deliverer, a *attemptCtx) Attempt
	// secrets lists the target's secret values so that error text from a
	// server can be scrubbed of them.
	secrets() []string
}

// common holds the settings every integration type accepts.
type common struct {
	name string
	typ  string
	// fields lists the analysis fields to send, in order; nil means every
	// non-PII field of the result (see CallResult.PIIFields).
	fields []string
	// recording is false when recording_link is "none".
	recording bool
}

// Name is the integration's name from the plan.
func (c *common) Name() string { return c.name }

// Type is the integration's type from the plan.
func (c *common) Type() string { return c.typ }

var fieldNamePattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// Parse validates one integration of a plan and returns its Target. Errors
// name the offending key as `integrations[NAME].KEY: problem` and never
// contain a secret or a URL. Unknown keys are errors, so that a typo never
// silently drops a setting.
//
// Settings common to every type:
//   - fields: list of analysis field names to send. Absent: every analysis
//     field except those marked pii in the plan (CallResult.PIIFields). A
//     PII field is only ever sent when listed here by name. An empty list
//     sends no analysis fields.
//   - recording_link: "link" (default: send CallResult.RecordingURL when set)
//     or "none". A boolean true/false is accepted as link/none.
//
// Type-specific settings are documented on parseWebhook, parseHubSpot,
// parseGoHighLevel and parsePipedrive.
func Parse(in agent.Integration) (Target, error) {
	label := in.Name
	if label == "" {
		label = in.Type
	}
	s := &settings{label: label, typ: in.Type, m: in.Settings, used: map[string]bool{}}
	if in.Name == "" {
		return nil, s.errf("name", "required")
	}
	c := common{name: in.Name, typ: in.Type, recording: true}
	var err error
	if c.fields, err = s.fieldList("fields"); err != nil {
		return nil, err
	}
	if c.recording, err = s.recordingMode("recording_link"); err != nil {
		return nil, err
	}
	var t Target
	switch in.Type {
	case TypeWebhook:
		t, err = parseWebhook(s, c)
	case TypeHubSpot:
		t, err = parseHubSpot(s, c)
	case TypeGoHighLevel:
		t, err = parseGoHighLevel(s, c)
	case TypePipedrive:
		t, err = parsePipedrive(s, c)
	case "":
		return nil, s.errf("type", "required (webhook, hubspot, gohighlevel or pipedrive)")
	default:
		return nil, s.errf("type", "%q must be webhook, hubspot, gohighlevel or pipedrive", in.Type)
	}
	if err != nil {
		return nil, err
	}
	if err := s.unknown(); err != nil {
		return nil, err
	}
	return t, nil
}

// settings reads typed values out of an integration's free-form settings and
// remembers which keys were read, so that the rest can be reported.
type settings struct {
	label string
	typ   string
	m     map[string]any
	used  map[string]bool
}

func (s *settings) errf(key, format string, args ...any) error {
	return fmt.Errorf("integrations[%s].%s: %s", s.label, key, fmt.Sprintf(format, args...))
}

func (s *settings) get(key string) (any, bool) {
	s.used[key] = true
	v, ok := s.m[key]
	if ok && v == nil {
		// YAML `key:` with no value means absent, not "null string".
		return nil, false
	}
	return v, ok
}

// str reads a string setting. Values are never echoed in errors because the
// key may hold a secret.
func (s *settings) str(key string, required bool) (string, error) {
	v, ok := s.get(key)
	if !ok {
		if required {
			return "", s.errf(key, "required")
		}
		return "", nil
	}
	str, isStr := v.(string)
	if !isStr {
		return "", s.errf(key, "must be a string")
	}
	str = strings.TrimSpace(str)
	if str == "" && required {
		return "", s.errf(key, "required")
	}
	return str, nil
}

// token reads a required credential that goes into a header or query: it
// must be printable ASCII without spaces, so that it can never split a
// header.
func (s *settings) token(key string) (string, error) {
	v, err := s.str(key, true)
	if err != nil {
		return "", err
	}
	for _, r := range v {
		if r <= ' ' || r > '~' {
			return "", s.errf(key, "must be printable ASCII without spaces")
		}
	}
	return v, nil
}

// baseURL reads an absolute http(s) URL and drops a trailing slash so that
// paths can be appended. The URL itself is never echoed: it may hold a token.
func (s *settings) baseURL(key, def string) (*url.URL, error) {
	raw, err := s.str(key, def == "")
	if err != nil {
		return nil, err
	}
	if raw == "" {
		raw = def
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return nil, s.errf(key, "must be an absolute http or https URL")
	}
	if u.Fragment != "" {
		return nil, s.errf(key, "must not have a #fragment")
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

func (s *settings) fieldList(key string) ([]string, error) {
	v, ok := s.get(key)
	if !ok {
		return nil, nil
	}
	list, isList := v.([]any)
	if !isList {
		return nil, s.errf(key, "must be a list of analysis field names")
	}
	out := make([]string, 0, len(list))
	for i, item := range list {
		name, _ := item.(string)
		if !fieldNamePattern.MatchString(name) {
			return nil, s.errf(fmt.Sprintf("%s[%d]", key, i), "must be an analysis field name")
		}
		if slices.Contains(out, name) {
			return nil, s.errf(fmt.Sprintf("%s[%d]", key, i), "%q listed twice", name)
		}
		out = append(out, name)
	}
	return out, nil
}

func (s *settings) recordingMode(key string) (bool, error) {
	v, ok := s.get(key)
	if !ok {
		return true, nil
	}
	switch v {
	case RecordingLinkInclude, true:
		return true, nil
	case RecordingLinkNone, false:
		return false, nil
	}
	return false, s.errf(key, "must be %q or %q", RecordingLinkInclude, RecordingLinkNone)
}

// stringMap reads a map of string to string; keys are returned sorted so that
// requests are deterministic. Values are not echoed in errors.
func (s *settings) stringMap(key string) (map[string]string, []string, error) {
	v, ok := s.get(key)
	if !ok {
		return nil, nil, nil
	}
	m, isMap := v.(map[string]any)
	if !isMap {
		return nil, nil, s.errf(key, "must be a map of names to strings")
	}
	out := make(map[string]string, len(m))
	keys := make([]string, 0, len(m))
	for k, val := range m {
		str, isStr := val.(string)
		if !isStr {
			return nil, nil, s.errf(key+"."+k, "must be a string")
		}
		out[k] = str
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return out, keys, nil
}

func (s *settings) unknown() error {
	var extra []string
	for k := range s.m {
		if !s.used[k] {
			extra = append(extra, k)
		}
	}
	if len(extra) == 0 {
		return nil
	}
	slices.Sort(extra)
	return s.errf(extra[0], "unknown setting for type %s", s.typ)
}

// hostOf is how a Target names where it sends: scheme and host, never path,
// query or user info.
func hostOf(u *url.URL) string {
	return u.Scheme + "://" + u.Host
}
