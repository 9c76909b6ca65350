// Package config reads postcall's configuration from the environment. Every
// value is validated up front: an invalid value, or a POSTCALL_ variable this
// binary does not know (a typo would otherwise silently fall back to a
// default), fails at start with a message naming the variable.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Defaults.
const (
	DefaultDatabaseURL    = "postgres://postgres@127.0.0.1:5432/postcall?sslmode=disable"
	DefaultOpenAIBaseURL  = "https://api.openai.com/v1"
	DefaultModel          = "gpt-4.1-mini"
	DefaultLLMRPM         = 500     // OpenAI tier 1 for gpt-4.1-mini
	DefaultLLMTPM         = 200_000 // OpenAI tier 1 for gpt-4.1-mini
	DefaultLLMConcurrency = 16
	// DefaultFlexFallbackAfter is how long a flex request waits out "no
	// flex capacity" answers before it is sent at the default tier.
	DefaultFlexFallbackAfter       = 5 * time.Minute
	MaxFlexFallbackAfter           = time.Hour
	DefaultRecordingURLTTL         = time.Hour
	MaxRecordingURLTTL             = 7 * 24 * time.Hour // the SigV4 presign maximum
	DefaultHTTPAddr                = "127.0.0.1:8080"
	DefaultPurgeSchedule           = "0 3 * * *"  // nightly at 03:00 UTC
	DefaultRetentionSchedule       = "30 3 * * *" // nightly at 03:30 UTC
	DefaultShutdownTimeout         = 30 * time.Second
	DefaultDBMaxConns              = 32
	DefaultDeliveryConcurrency     = 32
	DefaultIntegrationDisableAfter = 5 * 24 * time.Hour
	// DefaultPurgeAfterDays keeps a call's personal data for 30 days: long
	// enough for a monthly QC cycle, disputes and reanalysis, short enough to
	// meet data minimisation without anyone having to ask. An agent whose
	// calls must be kept longer says so in its plan.
	DefaultPurgeAfterDays = 30
	// DefaultHardDeleteAfterDays gives a soft-deleted call a 30-day undo
	// window, the usual trash period, which also completes a deletion within
	// GDPR's one-month deadline for answering an erasure request.
	DefaultHardDeleteAfterDays = 30
	// DefaultRetentionBatchSize is the most calls one retention transaction
	// takes. Within it each batch is sized to take about 80 ms at the speed
	// of the batch before (retention.DefaultBatchTarget), so the bound on
	// how long one batch holds its statement and locks no longer depends on
	// this number; 5000 lets an idle database use batches large enough that
	// round trips and commits cost next to nothing.
	DefaultRetentionBatchSize = 5000
	// DefaultRetentionPause is 0: the purge already pauses after each batch
	// for a quarter of the time the batch took (busy at most 80% of the
	// time, retention.DefaultShare), which leaves a busy database more room
	// than a fixed pause and an idle one less idle time. A pause set here is
	// a floor on top of that.
	DefaultRetentionPause = 0
)

// Rescue of jobs whose worker died.
const (
	// DefaultRescueAfter is how long a job whose worker died stays running
	// before River retries it: above the longest run (10 minutes) with room
	// to spare.
	DefaultRescueAfter = 15 * time.Minute
	// MinRescueAfter is the lowest POSTCALL_RESCUE_AFTER accepted.
	MinRescueAfter = 5 * time.Second
)

// Config is postcall's whole configuration.
type Config struct {
	// DatabaseURL is DATABASE_URL. Default DefaultDatabaseURL.
	DatabaseURL string

	// LLM holds the model endpoint and client-side limits.
	LLM LLM
	// S3 holds the recording store.
	S3 S3

	// HTTPAddr is POSTCALL_HTTP_ADDR, the worker's HTTP listener. Default
	// 127.0.0.1:8080.
	HTTPAddr string
	// APIToken is POSTCALL_API_TOKEN, the HTTP API's bearer token. Empty
	// means the API refuses everything but health checks.
	APIToken string

	// PurgeSchedule is POSTCALL_PURGE_SCHEDULE, a robfig/cron standard
	// expression (CRON_TZ= allowed). Default nightly at 03:00 UTC.
	PurgeSchedule string
	// RetentionSchedule is POSTCALL_RETENTION_SCHEDULE. Default nightly at
	// 03:30 UTC.
	RetentionSchedule string
	// PurgeAfterDays is POSTCALL_PURGE_AFTER_DAYS: how long a call keeps its
	// personal data when its agent's plan sets no retention.purge_after_days;
	// 0 purges at the next run. Default 30.
	PurgeAfterDays int
	// HardDeleteAfterDays is POSTCALL_HARD_DELETE_AFTER_DAYS: how long a
	// soft-deleted call can be restored before it is hard-deleted, when its
	// agent's plan sets no retention.hard_delete_after_days; 0 hard-deletes at
	// the next run. Default 30.
	HardDeleteAfterDays int
	// RetentionBatchSize is POSTCALL_RETENTION_BATCH_SIZE: the most calls per
	// retention transaction; each batch is sized to take about 80 ms within
	// it. Default 5000.
	RetentionBatchSize int
	// RetentionPause is POSTCALL_RETENTION_PAUSE: the least pause between
	// two retention batches, on top of the pause the purge takes anyway (a
	// quarter of each batch's time), for a gentler purge. Default 0.
	RetentionPause time.Duration

	// AllowPrivateTargets is POSTCALL_ALLOW_PRIVATE_TARGETS=1: integrations
	// may post to loopback and private addresses. Tests only. Default off.
	AllowPrivateTargets bool

	// PublicURL is POSTCALL_PUBLIC_URL: where people reach this server's
	// recording links (GET /r/{id}), put in CRM notes instead of presigned
	// URLs that die within 7 days. With LinkSecret; unset means CRM payloads
	// carry no recording link.
	PublicURL string
	// LinkSecret is POSTCALL_LINK_SECRET, the HMAC key of recording links
	// (at least 32 characters).
	LinkSecret string
	// IntegrationDisableAfter is POSTCALL_INTEGRATION_DISABLE_AFTER: an
	// integration failing continuously this long is disabled. Default 120h.
	IntegrationDisableAfter time.Duration

	// ShutdownTimeout is POSTCALL_SHUTDOWN_TIMEOUT: how long a stopping
	// worker lets running jobs finish before cancelling them. Default 30s.
	ShutdownTimeout time.Duration

	// DBMaxConns is POSTCALL_DB_MAX_CONNS, the connection pool's size per
	// process. Every running job holds a connection for its queries and
	// transactions, so pgx's own default (4 on 2 cores) starves a worker
	// running dozens of jobs. Default 32.
	DBMaxConns int

	// DeliveryConcurrency is POSTCALL_DELIVERY_CONCURRENCY: how many CRM
	// deliveries one worker process sends at once. A delivery mostly waits
	// on the receiver (up to its 15 s timeout), so this is set by how many
	// slow receivers should not hold up the rest, not by CPUs. Default 32.
	DeliveryConcurrency int

	// RescueAfter is POSTCALL_RESCUE_AFTER: how long a job whose worker
	// died (kill -9, lost node) stays running before River's leader retries
	// it. Every job's own timeout is held to two thirds of it, so that a job
	// still working is never rescued and worked twice. Default 15m; at least
	// 5s.
	RescueAfter time.Duration

	// LogFormat is POSTCALL_LOG_FORMAT, text or json. Default text.
	LogFormat string
	// LogLevel is POSTCALL_LOG_LEVEL: debug, info, warn or error. Default
	// info.
	LogLevel string
}

// LLM is the model endpoint.
type LLM struct {
	// BaseURL is OPENAI_BASE_URL. Default OpenAI's public API.
	BaseURL string
	// APIKey is OPENAI_API_KEY.
	APIKey string
	// Model is POSTCALL_MODEL, used when an agent names none. Default
	// gpt-4.1-mini.
	Model string
	// RPM, TPM and Concurrency are POSTCALL_LLM_RPM, POSTCALL_LLM_TPM and
	// POSTCALL_LLM_CONCURRENCY. Defaults 500, 200000 and 16.
	RPM, TPM, Concurrency int
	// Demo is POSTCALL_DEMO_MODEL=1: when no endpoint is configured, a
	// built-in demo model answers, and its output is labelled as demo output
	// everywhere. Default off.
	Demo bool
	// FlexFallbackAfter is POSTCALL_FLEX_FALLBACK_AFTER: how long a request
	// of an agent with service_tier flex retries, with backoff, while the
	// provider has no flex capacity, before it is sent at the default tier;
	// 0 falls back at the first such answer. Default 5m, at most 1h.
	FlexFallbackAfter time.Duration
}

// Configured reports whether a real endpoint is configured: a key, or a base
// URL other than OpenAI's (local servers often need no key). Without one,
// calls that need the model wait.
func (l LLM) Configured() bool {
	return l.APIKey != "" || strings.TrimRight(l.BaseURL, "/") != DefaultOpenAIBaseURL
}

// S3 is the recording store. Credentials come from the standard AWS_*
// variables and the default AWS chain.
type S3 struct {
	// Bucket is S3_BUCKET. Empty means recordings are not signed or deleted.
	Bucket string
	// Endpoint is S3_ENDPOINT, for S3-compatible stores.
	Endpoint string
	// Region is S3_REGION; AWS_REGION when unset; us-east-1 as a last resort.
	Region string
	// ForcePathStyle is S3_FORCE_PATH_STYLE.
	ForcePathStyle bool
	// URLTTL is POSTCALL_RECORDING_URL_TTL, clamped to 7 days. Default 1h.
	URLTTL time.Duration
	// URLTTLClamped reports that the configured TTL was above 7 days.
	URLTTLClamped bool
	// AccessKeyID, SecretAccessKey and SessionToken are AWS_ACCESS_KEY_ID,
	// AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN when set; otherwise the
	// rest of the default AWS chain (shared files, SSO, roles) applies.
	AccessKeyID, SecretAccessKey, SessionToken string
}

// known lists every POSTCALL_ variable, so that a misspelt one fails.
var known = map[string]bool{
	"POSTCALL_MODEL": true, "POSTCALL_LLM_RPM": true, "POSTCALL_LLM_TPM": true,
	"POSTCALL_LLM_CONCURRENCY": true, "POSTCALL_DEMO_MODEL": true, "POSTCALL_FLEX_FALLBACK_AFTER": true,
	"POSTCALL_RECORDING_URL_TTL": true, "POSTCALL_HTTP_ADDR": true, "POSTCALL_API_TOKEN": true,
	"POSTCALL_PURGE_SCHEDULE": true, "POSTCALL_RETENTION_SCHEDULE": true,
	"POSTCALL_ALLOW_PRIVATE_TARGETS": true, "POSTCALL_SHUTDOWN_TIMEOUT": true, "POSTCALL_DB_MAX_CONNS": true, "POSTCALL_RESCUE_AFTER": true,
	"POSTCALL_DELIVERY_CONCURRENCY": true, "POSTCALL_LOG_FORMAT": true, "POSTCALL_LOG_LEVEL": true,
	"POSTCALL_PUBLIC_URL": true, "POSTCALL_LINK_SECRET": true, "POSTCALL_INTEGRATION_DISABLE_AFTER": true,
	"POSTCALL_PURGE_AFTER_DAYS": true, "POSTCALL_HARD_DELETE_AFTER_DAYS": true,
	"POSTCALL_RETENTION_BATCH_SIZE": true, "POSTCALL_RETENTION_PAUSE": true,
}

// Load reads the configuration from environ (os.Environ's KEY=VALUE form).
// All problems are reported together, each naming its variable.
func Load(environ []string) (*Config, error) {
	env := make(map[string]string, len(environ))
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	r := reader{env: env}
	for k := range env {
		if strings.HasPrefix(k, "POSTCALL_") && !known[k] {
			r.fail(k, "unknown variable (misspelt?)")
		}
	}

	cfg := &Config{
		DatabaseURL: r.str("DATABASE_URL", DefaultDatabaseURL),
		LLM: LLM{
			BaseURL:     r.url("OPENAI_BASE_URL", DefaultOpenAIBaseURL),
			APIKey:      r.str("OPENAI_API_KEY", ""),
			Model:       r.str("POSTCALL_MODEL", DefaultModel),
			RPM:         r.positiveInt("POSTCALL_LLM_RPM", DefaultLLMRPM),
			TPM:         r.positiveInt("POSTCALL_LLM_TPM", DefaultLLMTPM),
			Concurrency: r.positiveInt("POSTCALL_LLM_CONCURRENCY", DefaultLLMConcurrency),
			Demo:        r.flag("POSTCALL_DEMO_MODEL"),
			FlexFallbackAfter: r.durationUpTo("POSTCALL_FLEX_FALLBACK_AFTER", DefaultFlexFallbackAfter,
				MaxFlexFallbackAfter),
		},
		S3: S3{
			Bucket:          r.str("S3_BUCKET", ""),
			Endpoint:        r.url("S3_ENDPOINT", ""),
			Region:          r.str("S3_REGION", r.str("AWS_REGION", "us-east-1")),
			ForcePathStyle:  r.flag("S3_FORCE_PATH_STYLE"),
			URLTTL:          r.duration("POSTCALL_RECORDING_URL_TTL", DefaultRecordingURLTTL),
			AccessKeyID:     r.str("AWS_ACCESS_KEY_ID", ""),
			SecretAccessKey: r.str("AWS_SECRET_ACCESS_KEY", ""),
			SessionToken:    r.str("AWS_SESSION_TOKEN", ""),
		},
		HTTPAddr:                r.addr("POSTCALL_HTTP_ADDR", DefaultHTTPAddr),
		APIToken:                r.str("POSTCALL_API_TOKEN", ""),
		PurgeSchedule:           r.schedule("POSTCALL_PURGE_SCHEDULE", DefaultPurgeSchedule),
		RetentionSchedule:       r.schedule("POSTCALL_RETENTION_SCHEDULE", DefaultRetentionSchedule),
		PurgeAfterDays:          r.days("POSTCALL_PURGE_AFTER_DAYS", DefaultPurgeAfterDays),
		HardDeleteAfterDays:     r.days("POSTCALL_HARD_DELETE_AFTER_DAYS", DefaultHardDeleteAfterDays),
		RetentionBatchSize:      r.positiveInt("POSTCALL_RETENTION_BATCH_SIZE", DefaultRetentionBatchSize),
		RetentionPause:          r.pause("POSTCALL_RETENTION_PAUSE", DefaultRetentionPause),
		AllowPrivateTargets:     r.flag("POSTCALL_ALLOW_PRIVATE_TARGETS"),
		ShutdownTimeout:         r.duration("POSTCALL_SHUTDOWN_TIMEOUT", DefaultShutdownTimeout),
		DBMaxConns:              r.positiveInt("POSTCALL_DB_MAX_CONNS", DefaultDBMaxConns),
		DeliveryConcurrency:     r.positiveInt("POSTCALL_DELIVERY_CONCURRENCY", DefaultDeliveryConcurrency),
		RescueAfter:             r.rescueAfter("POSTCALL_RESCUE_AFTER", DefaultRescueAfter),
		PublicURL:               r.url("POSTCALL_PUBLIC_URL", ""),
		LinkSecret:              r.str("POSTCALL_LINK_SECRET", ""),
		IntegrationDisableAfter: r.duration("POSTCALL_INTEGRATION_DISABLE_AFTER", DefaultIntegrationDisableAfter),
		LogFormat:               r.oneOf("POSTCALL_LOG_FORMAT", "text", "text", "json"),
		LogLevel:                r.oneOf("POSTCALL_LOG_LEVEL", "info", "debug", "info", "warn", "error"),
	}
	if _, err := url.Parse(cfg.DatabaseURL); err != nil || !(strings.HasPrefix(cfg.DatabaseURL, "postgres://") || strings.HasPrefix(cfg.DatabaseURL, "postgresql://")) {
		r.fail("DATABASE_URL", "must be a postgres:// URL")
	}
	if (cfg.S3.AccessKeyID == "") != (cfg.S3.SecretAccessKey == "") {
		r.fail("AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY go together: set both or neither")
	}
	if (cfg.PublicURL == "") != (cfg.LinkSecret == "") {
		r.fail("POSTCALL_LINK_SECRET", "POSTCALL_PUBLIC_URL and POSTCALL_LINK_SECRET go together: set both or neither")
	} else if cfg.LinkSecret != "" && len(cfg.LinkSecret) < 32 {
		r.fail("POSTCALL_LINK_SECRET", "must be at least 32 characters")
	}
	if cfg.S3.URLTTL > MaxRecordingURLTTL {
		cfg.S3.URLTTL = MaxRecordingURLTTL
		cfg.S3.URLTTLClamped = true
	}
	if len(r.problems) > 0 {
		return nil, errors.New("invalid configuration:\n  " + strings.Join(r.problems, "\n  "))
	}
	return cfg, nil
}

// reader collects problems instead of stopping at the first, so that one
// start shows everything to fix.
type reader struct {
	env      map[string]string
	problems []string
}

func (r *reader) fail(name, format string, args ...any) {
	r.problems = append(r.problems, name+": "+fmt.Sprintf(format, args...))
}

func (r *reader) str(name, def string) string {
	if v, ok := r.env[name]; ok && strings.TrimSpace(v) != "" {
		return strings.TrimSpace(v)
	}
	return def
}

func (r *reader) url(name, def string) string {
	v := r.str(name, def)
	if v == "" {
		return v
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		r.fail(name, "%q must be an absolute http(s) URL", v)
	}
	return strings.TrimRight(v, "/")
}

func (r *reader) positiveInt(name string, def int) int {
	v := r.str(name, "")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		r.fail(name, "%q must be a positive integer", v)
		return def
	}
	return n
}

// days reads a whole number of days, 0 or more; at most 100 years, so that
// a cutoff computed from it stays a valid time.
func (r *reader) days(name string, def int) int {
	v := r.str(name, "")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 36500 {
		r.fail(name, "%q must be a whole number of days from 0 (at the next run) to 36500", v)
		return def
	}
	return n
}

// pause reads a duration that may be 0.
func (r *reader) pause(name string, def time.Duration) time.Duration {
	v := r.str(name, "")
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 || d > time.Minute {
		r.fail(name, "%q must be a duration from 0s to 1m, such as 100ms", v)
		return def
	}
	return d
}

// durationUpTo reads a duration from 0 to most.
func (r *reader) durationUpTo(name string, def, most time.Duration) time.Duration {
	v := r.str(name, "")
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 || d > most {
		r.fail(name, "%q must be a duration from 0s to %s, such as 5m", v, most)
		return def
	}
	return d
}

func (r *reader) flag(name string) bool {
	switch strings.ToLower(r.str(name, "0")) {
	case "1", "true", "yes", "on":
		return true
	case "0", "false", "no", "off":
		return false
	default:
		r.fail(name, "%q must be 1 or 0", r.env[name])
		return false
	}
}

func (r *reader) duration(name string, def time.Duration) time.Duration {
	v := r.str(name, "")
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		r.fail(name, "%q must be a positive duration such as 90s, 30m or 1h", v)
		return def
	}
	return d
}

// rescueAfter reads a duration of at least MinRescueAfter.
func (r *reader) rescueAfter(name string, def time.Duration) time.Duration {
	v := r.str(name, "")
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < MinRescueAfter {
		r.fail(name, "%q must be a duration of at least %s, such as 15m", v, MinRescueAfter)
		return def
	}
	return d
}

func (r *reader) addr(name, def string) string {
	v := r.str(name, def)
	if _, _, err := net.SplitHostPort(v); err != nil {
		r.fail(name, "%q must be host:port", v)
	}
	return v
}

func (r *reader) schedule(name, def string) string {
	v := r.str(name, def)
	if _, err := cron.ParseStandard(v); err != nil {
		r.fail(name, "%q is not a cron expression: %v", v, err)
	}
	return v
}

func (r *reader) oneOf(name, def string, allowed ...string) string {
	v := strings.ToLower(r.str(name, def))
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	r.fail(name, "%q must be one of %s", v, strings.Join(allowed, ", "))
	return def
}
