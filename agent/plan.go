// Package agent holds an agent's post-call plan: what to extract from its
// calls, how to judge them, where to send the results and how long to keep
// personal data. Plans are versioned: every change that alters the plan's
// canonical form gets a new version, and every analysis result records the
// version that produced it.
package agent

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/postcall/postcall/redact"
)

// FieldType is the type of one structured analysis field.
type FieldType string

const (
	FieldString  FieldType = "string"
	FieldNumber  FieldType = "number"
	FieldInteger FieldType = "integer"
	FieldBoolean FieldType = "boolean"
	FieldEnum    FieldType = "enum"
	FieldDate    FieldType = "date" // YYYY-MM-DD
)

// Plan is one agent's post-call plan as written in an `agents apply` file.
type Plan struct {
	// ID is what calls' agent_id refers to. Required.
	ID string `json:"id"`
	// Name is a human label. Defaults to ID.
	Name string `json:"name,omitempty"`
	// Model is the LLM model for analysis and QC. Empty means the
	// POSTCALL_MODEL default.
	Model string `json:"model,omitempty"`
	// Analysis is the post-call analysis prompt and its typed fields. Nil
	// means calls of this agent get no analysis request.
	Analysis *Analysis `json:"analysis,omitempty"`
	// QC is the quality-control prompt and checklist. Nil means no QC.
	QC *QC `json:"qc,omitempty"`
	// Cache configures provider prompt caching for this agent's requests.
	Cache Cache `json:"cache,omitempty"`
	// ServiceTier is sent as the requests' service_tier: "flex" for
	// OpenAI's cheaper, slower flex processing. Empty: the provider's
	// default tier.
	ServiceTier string `json:"service_tier,omitempty"`
	// Integrations receive the call's results after it is finalized.
	Integrations []Integration `json:"integrations,omitempty"`
	// Retention says when personal data is purged and soft-deleted calls are
	// hard-deleted. Nil fields fall back to the global defaults.
	Retention Retention `json:"retention,omitempty"`
	// Redact lists the personal data removed from transcripts at ingest,
	// before anything is stored. Nil redacts nothing.
	Redact *Redact `json:"redact,omitempty"`
}

// Redact configures transcript redaction.
type Redact struct {
	// Entities are the redact package's entity names (credit_card, ssn,
	// iban, bank_account, email, phone_number, date_of_birth). At least
	// one; stored in canonical order, so listing them in another order is
	// the same plan version.
	Entities []string `json:"entities"`
}

// Analysis is the post-call analysis prompt.
type Analysis struct {
	// Prompt is static instructions; it must not hold per-call content, so
	// that every request of one plan version shares a cacheable prefix.
	Prompt string `json:"prompt"`
	// Fields are the structured output, in the order given.
	Fields []Field `json:"fields"`
	// SummaryField names the field copied to the call's call_summary.
	SummaryField string `json:"summary_field,omitempty"`
	// DispositionField names the field copied to the call's disposition.
	DispositionField string `json:"disposition_field,omitempty"`
	// SuccessField names the boolean field copied to general_success.
	SuccessField string `json:"success_field,omitempty"`
	// Skip sets the thresholds below which a call gets an auto disposition
	// and no LLM request.
	Skip Skip `json:"skip,omitempty"`
	// MaxTokens is the output budget of every analysis request, replacing
	// the one postcall sizes from the answers' history. 0: postcall's.
	MaxTokens int `json:"max_tokens,omitempty"`
	// Evidence asks the model for a verbatim transcript quote behind each
	// field's value and checks it (EvidenceCheck flags a value whose quote
	// is not found, EvidenceRequire withholds it). Default EvidenceOff.
	Evidence EvidenceMode `json:"evidence,omitempty"`
}

// EvidenceMode says whether answers must quote the transcript.
type EvidenceMode string

const (
	// EvidenceOff asks for no quote (the default).
	EvidenceOff EvidenceMode = ""
	// EvidenceCheck checks every quote and flags a value whose quote is not
	// in the transcript, keeping it.
	EvidenceCheck EvidenceMode = "check"
	// EvidenceRequire checks every quote and withholds a value whose quote
	// is not in the transcript: stored as null, never pushed.
	EvidenceRequire EvidenceMode = "require"
)

// UnmarshalJSON takes a string, and says what to write instead of a boolean
// (YAML reads yes, on and true as one).
func (m *EvidenceMode) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("evidence: %s must be check or require (or absent for none)", data)
	}
	*m = EvidenceMode(s)
	return nil
}

func (m EvidenceMode) validate() error {
	switch m {
	case EvidenceOff, EvidenceCheck, EvidenceRequire:
		return nil
	}
	return fmt.Errorf("evidence: %q must be check or require (or absent for none)", string(m))
}

// Field is one typed structured-output field.
type Field struct {
	Name        string    `json:"name"`
	Type        FieldType `json:"type"`
	Description string    `json:"description,omitempty"`
	// Values are the allowed values of an enum field.
	Values []string `json:"values,omitempty"`
	// PII marks a field the purge erases.
	PII bool `json:"pii,omitempty"`
	// Evidence false opts the field out of the plan's analysis.evidence:
	// its value comes without a quote and is never withheld. Default (nil)
	// true; only meaningful when analysis.evidence is set.
	Evidence *bool `json:"evidence,omitempty"`
}

// Skip holds the auto-disposition thresholds.
type Skip struct {
	// MinUserTurns is the fewest customer turns worth analysing. Default 1:
	// a call where the customer never spoke is never sent to the model.
	MinUserTurns *int `json:"min_user_turns,omitempty"`
	// MinDuration is the shortest call, in seconds, worth analysing.
	// Default 0.
	MinDuration *float64 `json:"min_duration,omitempty"`
}

// QC is the quality-control prompt and the checklist the model judges.
type QC struct {
	Prompt    string          `json:"prompt"`
	Checklist []ChecklistItem `json:"checklist"`
	// PassScore is the lowest final_score that counts as passed. Default 7.
	PassScore int `json:"pass_score,omitempty"`
	// MaxTokens is the output budget of every QC request, replacing the one
	// postcall sizes from the answers' history. 0: postcall's.
	MaxTokens int `json:"max_tokens,omitempty"`
	// Evidence asks for a verbatim quote as each item's evidence and checks
	// it: EvidenceCheck flags an item whose quote is not found;
	// EvidenceRequire also gives a passed item no credit in the score
	// unless its quote is found. Default EvidenceOff (evidence may be a
	// paraphrase, unchecked).
	Evidence EvidenceMode `json:"evidence,omitempty"`
}

// Limits of a QC checklist's weights: the score's integer arithmetic
// (analysis.Score) stays far from overflow, and a weight is a relative
// importance, for which a thousand steps are plenty.
const (
	MaxWeight      = 1000
	MaxTotalWeight = 100_000
)

// ChecklistItem is one QC item. The model returns passed+evidence per item;
// postcall computes the score.
type ChecklistItem struct {
	ID          string `json:"id"`
	Description string `json:"description"`
	// Weight is an integer from 1 to MaxWeight. Default 1.
	Weight int `json:"weight,omitempty"`
	// Fatal items force final_score 1 when failed.
	Fatal bool `json:"fatal,omitempty"`
}

// Cache configures provider prompt caching.
type Cache struct {
	// Enabled sends a stable prompt_cache_key per agent plan.
	Enabled bool `json:"enabled,omitempty"`
	// Retention is sent as prompt_cache_retention ("24h" or "in_memory")
	// when set.
	Retention string `json:"retention,omitempty"`
}

// Integration is one CRM or webhook target. Type-specific settings live in
// the remaining fields; the crm package validates them.
type Integration struct {
	Name string `json:"name"`
	Type string `json:"type"`
	// Settings holds every other key of the integration, e.g. url, secret,
	// token, field mapping.
	Settings map[string]any `json:"-"`
}

// Retention holds per-agent retention periods in days. Nil means the global
// default; 0 means at the next run.
type Retention struct {
	PurgeAfterDays      *int `json:"purge_after_days,omitempty"`
	HardDeleteAfterDays *int `json:"hard_delete_after_days,omitempty"`
}

// MarshalJSON flattens Settings next to name and type.
func (i Integration) MarshalJSON() ([]byte, error) {
	m := make(map[string]any, len(i.Settings)+2)
	for k, v := range i.Settings {
		m[k] = v
	}
	m["name"] = i.Name
	m["type"] = i.Type
	return json.Marshal(m)
}

// UnmarshalJSON keeps every key other than name and type in Settings. A
// name or type that is present but not a string is an error naming the key
// (absent or null is left to Validate, which reports it as required).
func (i *Integration) UnmarshalJSON(data []byte) error {
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		return err
	}
	var name, typ string
	for _, k := range []struct {
		key string
		dst *string
	}{{"name", &name}, {"type", &typ}} {
		v, ok := m[k.key]
		if !ok || v == nil {
			continue
		}
		str, isStr := v.(string)
		if !isStr {
			return fmt.Errorf("integrations.%s: %s must be a string", k.key, jsonText(v))
		}
		*k.dst = str
	}
	delete(m, "name")
	delete(m, "type")
	*i = Integration{Name: name, Type: typ, Settings: m}
	return nil
}

// jsonText renders a decoded JSON value for an error message.
func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%v", v)
	}
	return string(b)
}

// ParsePlans reads one plan or a list of plans from YAML or JSON (JSON is
// YAML). Unknown keys, keys given twice and further YAML documents (---) are
// errors so that a typo never silently disables a setting or an agent. Every
// plan is validated.
func ParsePlans(data []byte) ([]Plan, error) {
	if yamlDocuments(data) > 1 {
		return nil, errors.New("parse agents file: more than one YAML document (---): list the agents instead (- id: ...)")
	}
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, fmt.Errorf("parse agents file: %w", err)
	}
	js = bytes.TrimSpace(js)
	if len(js) == 0 || string(js) == "null" {
		return nil, errors.New("parse agents file: no agent in file")
	}
	var raws []json.RawMessage
	if js[0] == '[' {
		if err := json.Unmarshal(js, &raws); err != nil {
			return nil, fmt.Errorf("parse agents file: %w", err)
		}
		if len(raws) == 0 {
			return nil, errors.New("parse agents file: no agent in file (empty list)")
		}
	} else {
		raws = []json.RawMessage{js}
	}
	plans := make([]Plan, 0, len(raws))
	var ps problems
	seen := map[string]bool{}
	for n, raw := range raws {
		var p Plan
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&p); err != nil {
			ps.add("agent #%d: %v", n+1, err)
			continue
		}
		p.applyDefaults()
		agentPs := ps.under(fmt.Sprintf("agent #%d: ", n+1))
		if p.ID != "" {
			agentPs = ps.under(fmt.Sprintf("agent %q: ", p.ID))
		}
		before := len(ps.list)
		p.validate(agentPs)
		if len(ps.list) == before {
			if err := storableStrings(p.Canonical()); err != nil {
				agentPs.add("%v", err)
			}
		}
		if p.ID != "" && seen[p.ID] {
			agentPs.add("listed twice")
		}
		seen[p.ID] = true
		plans = append(plans, p)
	}
	if err := ps.err(); err != nil {
		return nil, err
	}
	return plans, nil
}

// PlanError is every problem of a plan or an agents file, each naming the
// agent and the key (agent "x": analysis.fields[1].values: ...), so that
// one run shows everything to fix.
type PlanError struct {
	Problems []string
}

func (e *PlanError) Error() string {
	if len(e.Problems) == 1 {
		return e.Problems[0]
	}
	return fmt.Sprintf("%d problems:\n  %s", len(e.Problems), strings.Join(e.Problems, "\n  "))
}

// problems collects validation problems under a key prefix.
type problems struct {
	prefix string
	// list is shared by every problems derived with under.
	list   []string
	parent *problems
}

func (ps *problems) add(format string, args ...any) {
	root := ps
	for root.parent != nil {
		root = root.parent
	}
	root.list = append(root.list, ps.prefix+fmt.Sprintf(format, args...))
}

// under returns a collector adding to ps with prefix before every key.
func (ps *problems) under(prefix string) *problems {
	return &problems{prefix: ps.prefix + prefix, parent: ps}
}

func (ps *problems) err() error {
	if len(ps.list) == 0 {
		return nil
	}
	return &PlanError{Problems: ps.list}
}

// yamlDocuments counts the YAML documents in data that hold anything but
// comments. A document marker is "---" at the start of a line followed by
// nothing, a space or a tab; at column 0 it cannot be part of a scalar.
func yamlDocuments(data []byte) int {
	docs, content := 0, false
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimRight(line, "\r")
		if rest, ok := strings.CutPrefix(line, "---"); ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t') {
			if content {
				docs++
			}
			content = false
			line = rest
		}
		// Comments, directives (%YAML) and the end marker (...) are not
		// content.
		if t := strings.TrimSpace(line); t != "" && t[0] != '#' && t[0] != '%' && t != "..." {
			content = true
		}
	}
	if content {
		docs++
	}
	return docs
}

func (p *Plan) applyDefaults() {
	if p.Name == "" {
		p.Name = p.ID
	}
	if p.Redact != nil {
		if entities, err := redact.ParseEntities(p.Redact.Entities); err == nil {
			p.Redact.Entities = entityNames(entities)
		}
	}
	if p.QC != nil {
		if p.QC.PassScore == 0 {
			p.QC.PassScore = 7
		}
		for i := range p.QC.Checklist {
			if p.QC.Checklist[i].Weight == 0 {
				p.QC.Checklist[i].Weight = 1
			}
		}
	}
}

var (
	idPattern        = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$`)
	fieldNamePattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)
)

// Validate reports every problem with the plan, each naming its key
// (analysis.fields[1].values: ...), as a *PlanError; nil when there is none.
func (p *Plan) Validate() error {
	var ps problems
	p.validate(&ps)
	return ps.err()
}

func (p *Plan) validate(ps *problems) {
	switch {
	case p.ID == "":
		ps.add("id: required")
	case !idPattern.MatchString(p.ID):
		ps.add("id: %q must be 1-128 letters, digits or _.:- and start with a letter or digit", p.ID)
	}
	if a := p.Analysis; a != nil {
		a.validate(ps.under("analysis."))
	}
	if q := p.QC; q != nil {
		q.validate(ps.under("qc."))
	}
	switch p.Cache.Retention {
	case "", "24h", "in_memory":
	default:
		ps.add("cache.retention: %q must be 24h or in_memory", p.Cache.Retention)
	}
	switch p.ServiceTier {
	case "", "flex":
	default:
		ps.add("service_tier: %q must be flex (or absent for the default tier)", p.ServiceTier)
	}
	names := map[string]bool{}
	for n, in := range p.Integrations {
		switch {
		case in.Name == "":
			ps.add("integrations[%d].name: required", n)
		case names[in.Name]:
			ps.add("integrations[%d].name: %q used twice", n, in.Name)
		}
		names[in.Name] = true
		if in.Type == "" {
			ps.add("integrations[%d].type: required", n)
		}
	}
	if err := p.Redact.validate(); err != nil {
		ps.add("redact.entities: %v", err)
	}
	if d := p.Retention.PurgeAfterDays; d != nil && (*d < 0 || *d > MaxRetentionDays) {
		ps.add("retention.purge_after_days: %d must be between 0 and %d", *d, MaxRetentionDays)
	}
	if d := p.Retention.HardDeleteAfterDays; d != nil && (*d < 0 || *d > MaxRetentionDays) {
		ps.add("retention.hard_delete_after_days: %d must be between 0 and %d", *d, MaxRetentionDays)
	}
}

// MaxRetentionDays bounds a plan's retention periods (100 years, as the
// POSTCALL_*_AFTER_DAYS variables): a cutoff computed from a larger number
// of days overflows and could land in the future, purging every call.
const MaxRetentionDays = 36500

func (a *Analysis) validate(ps *problems) {
	if strings.TrimSpace(a.Prompt) == "" {
		ps.add("prompt: required")
	}
	if len(a.Fields) == 0 {
		ps.add("fields: at least one field is required")
	}
	// References to fields are checked only against fields without
	// problems of their own: a misnamed or mistyped field is one problem,
	// not one more for every key naming it.
	byName := map[string]Field{}
	unsure := len(a.Fields) == 0
	for n, f := range a.Fields {
		if !fieldNamePattern.MatchString(f.Name) {
			ps.add("fields[%d].name: %q must be a letter or _ followed by up to 63 letters, digits or _", n, f.Name)
			unsure = true
		} else if _, dup := byName[f.Name]; dup {
			ps.add("fields[%d].name: %q used twice", n, f.Name)
		}
		switch f.Type {
		case FieldString, FieldNumber, FieldInteger, FieldBoolean, FieldDate:
			if len(f.Values) > 0 {
				ps.add("fields[%d].values: only an enum field takes values", n)
			}
		case FieldEnum:
			if len(f.Values) == 0 {
				ps.add("fields[%d].values: required for an enum (at least one value)", n)
			}
			seen := map[string]bool{}
			for _, v := range f.Values {
				if v == "" || seen[v] {
					ps.add("fields[%d].values: %q is empty or repeated", n, v)
				}
				seen[v] = true
			}
		case "":
			ps.add("fields[%d].type: required (string, number, integer, boolean, enum or date)", n)
			f.Type = ""
		default:
			ps.add("fields[%d].type: %q must be string, number, integer, boolean, enum or date", n, f.Type)
			f.Type = ""
		}
		if _, dup := byName[f.Name]; !dup {
			byName[f.Name] = f
		}
		if f.Evidence != nil && a.Evidence == EvidenceOff {
			ps.add("fields[%d].evidence: set analysis.evidence (check or require) first; without it no field has evidence", n)
		}
	}
	if err := a.Evidence.validate(); err != nil {
		ps.add("%s", err)
	}
	if a.Evidence != EvidenceOff && !slices.ContainsFunc(a.Fields, a.WantsEvidence) {
		ps.add("evidence: every field opts out (evidence: false); remove evidence or let a field keep it")
	}
	check := func(key, name string, types ...FieldType) {
		if name == "" {
			return
		}
		f, ok := byName[name]
		if !ok {
			if !unsure {
				ps.add("%s: %q is not one of the fields", key, name)
			}
			return
		}
		if f.Type != "" && !slices.Contains(types, f.Type) {
			ps.add("%s: field %q is %s, want %s", key, name, f.Type, joinTypes(types))
		}
	}
	check("summary_field", a.SummaryField, FieldString)
	check("disposition_field", a.DispositionField, FieldEnum, FieldString)
	check("success_field", a.SuccessField, FieldBoolean)
	if t := a.Skip.MinUserTurns; t != nil && *t < 0 {
		ps.add("skip.min_user_turns: %d must not be negative", *t)
	}
	if d := a.Skip.MinDuration; d != nil && *d < 0 {
		ps.add("skip.min_duration: %g must not be negative", *d)
	}
	validateMaxTokens(ps, a.MaxTokens)
}

// MaxPlanTokens is the largest output budget a plan may set: the largest
// output of current OpenAI models.
const MaxPlanTokens = 128_000

func validateMaxTokens(ps *problems, n int) {
	if n < 0 || n > MaxPlanTokens {
		ps.add("max_tokens: %d must be between 1 and %d (absent: sized from the answers)", n, MaxPlanTokens)
	}
}

// validate checks the entity names, naming every unknown one.
func (r *Redact) validate() error {
	if r == nil {
		return nil
	}
	if len(r.Entities) == 0 {
		return errors.New("list at least one entity, or remove redact")
	}
	_, err := redact.ParseEntities(r.Entities)
	return err
}

// Redactor is the plan's transcript redactor; it redacts nothing when the
// plan has no redact section.
func (p *Plan) Redactor() (*redact.Redactor, error) {
	if p.Redact == nil {
		return redact.New(nil), nil
	}
	entities, err := redact.ParseEntities(p.Redact.Entities)
	if err != nil {
		return nil, fmt.Errorf("plan %q: redact.entities: %w", p.ID, err)
	}
	return redact.New(entities), nil
}

func entityNames(entities []redact.Entity) []string {
	names := make([]string, len(entities))
	for i, e := range entities {
		names[i] = string(e)
	}
	return names
}

func joinTypes(types []FieldType) string {
	s := make([]string, len(types))
	for i, t := range types {
		s[i] = string(t)
	}
	return strings.Join(s, " or ")
}

func (q *QC) validate(ps *problems) {
	if strings.TrimSpace(q.Prompt) == "" {
		ps.add("prompt: required")
	}
	if len(q.Checklist) == 0 {
		ps.add("checklist: at least one item is required")
	}
	seen, total := map[string]bool{}, 0
	for n, it := range q.Checklist {
		if !fieldNamePattern.MatchString(it.ID) {
			ps.add("checklist[%d].id: %q must be a letter or _ followed by up to 63 letters, digits or _", n, it.ID)
		} else if seen[it.ID] {
			ps.add("checklist[%d].id: %q used twice", n, it.ID)
		}
		seen[it.ID] = true
		if strings.TrimSpace(it.Description) == "" {
			ps.add("checklist[%d].description: required", n)
		}
		switch {
		case it.Weight < 1:
			ps.add("checklist[%d].weight: %d must be a positive integer", n, it.Weight)
		case it.Weight > MaxWeight:
			ps.add("checklist[%d].weight: %d must be between 1 and %d", n, it.Weight, MaxWeight)
		default:
			total += it.Weight
		}
	}
	if total > MaxTotalWeight {
		ps.add("checklist: the weights add up to %d, more than %d", total, MaxTotalWeight)
	}
	if err := q.Evidence.validate(); err != nil {
		ps.add("%s", err)
	}
	if q.PassScore < 1 || q.PassScore > 10 {
		ps.add("pass_score: %d must be between 1 and 10", q.PassScore)
	}
	validateMaxTokens(ps, q.MaxTokens)
}

// Canonical is the plan's canonical JSON: two plans with the same canonical
// form are the same version.
func (p *Plan) Canonical() []byte {
	b, err := json.Marshal(p)
	if err != nil {
		// A Plan holds only JSON-safe values; Settings came from JSON.
		panic(fmt.Sprintf("marshal plan %q: %v", p.ID, err))
	}
	return b
}

// Hash is the SHA-256 of the canonical form, hex encoded.
func (p *Plan) Hash() string {
	sum := sha256.Sum256(p.Canonical())
	return hex.EncodeToString(sum[:])
}

// MinUserTurns is the effective customer-turn threshold (default 1).
func (a *Analysis) MinUserTurns() int {
	if a == nil || a.Skip.MinUserTurns == nil {
		return 1
	}
	return *a.Skip.MinUserTurns
}

// MinDuration is the effective duration threshold (default 0).
func (a *Analysis) MinDuration() time.Duration {
	if a == nil || a.Skip.MinDuration == nil {
		return 0
	}
	return time.Duration(*a.Skip.MinDuration * float64(time.Second))
}

// WantsEvidence says whether f's value comes with a checked quote: the
// plan asks for evidence and f does not opt out.
func (a *Analysis) WantsEvidence(f Field) bool {
	return a != nil && a.Evidence != EvidenceOff && (f.Evidence == nil || *f.Evidence)
}

// Field returns the named field.
func (a *Analysis) Field(name string) (Field, bool) {
	for _, f := range a.Fields {
		if f.Name == name {
			return f, true
		}
	}
	return Field{}, false
}
