// Package config reads postcall's configuration from the environment. Every
// value is validated up front: an invalid value, or a POSTCALL_ variable this
// binary does not know (a typo would otherwise silently fall back to a
// default), fails at start with a message naming the variable. Only config
// and cmd name environment variables; each default is owned by the package
// whose behaviour it sets, and Load refers to it. A new variable goes in
// Load (which makes it known) and in README's configuration table.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/postcall/postcall/analysis"
	"github.com/postcall/postcall/crm"
	"github.com/postcall/postcall/heartbeat"
	"github.com/postcall/postcall/jobs"
	"github.com/postcall/postcall/pricing"
	"github.com/postcall/postcall/recording"
	"github.com/postcall/postcall/retention"
)

// Defaults that belong to no other package. Every other default is owned
// by the package whose behaviour it sets (analysis.DefaultRPM,
// retention.DefaultBatchSize, jobs.DefaultRescueAfter, ...); Load refers to
// those, so a default is declared once.
const (
	DefaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/postcall?sslmode=disable"
	DefaultHTTPAddr    = "127.0.0.1:8080"
	// DefaultDBMaxConns is the connection pool's size per process: every
	// running job holds a connection for its queries and transactions.
	DefaultDBMaxConns = 32
	// MaxFlexFallbackAfter is the longest POSTCALL_FLEX_FALLBACK_AFTER
	// accepted: a flex request must not wait for capacity longer than an
	// hour before it is sent at the default tier.
	MaxFlexFallbackAfter = time.Hour
	// MaxBatchPollInterval is the longest POSTCALL_BATCH_POLL_INTERVAL
	// accepted: a batch's results must not wait more than an hour once
	// ready.
	MaxBatchPollInterval = time.Hour
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

	// PricesFile is POSTCALL_PRICES_FILE: a YAML or JSON price file laid
	// over the built-in prices (see pricing.Load). Default none.
	PricesFile string
	// Prices is the price table each LLM request is priced with: the
	// built-in one (pricing.Default) with PricesFile over it.
	Prices *pricing.Table
	// WorkerDeadAfter is POSTCALL_WORKER_DEAD_AFTER: how long a worker
	// process may miss its heartbeats (one every 5s) before the jobs it
	// holds running are made available again. A live process is never
	// declared dead however long its jobs run. Default 30s; at least 15s.
	WorkerDeadAfter time.Duration

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
	// BatchPollInterval is POSTCALL_BATCH_POLL_INTERVAL: how often a batch
	// sent through OpenAI's Batch API (reanalyze --batch) is polled. Default
	// 1m, from 1s to 1h.
	BatchPollInterval time.Duration
}

// Configured reports whether a real endpoint is configured: a key, or a base
// URL other than OpenAI's (local servers often need no key). Without one,
// calls that need the model wait.
func (l LLM) Configured() bool {
	return l.APIKey != "" || strings.TrimRight(l.BaseURL, "/") != analysis.DefaultBaseURL
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

// Load reads the configuration from environ (os.Environ's KEY=VALUE form).
// All problems are reported together, each naming its variable.
func Load(environ []string) (*Config, error) {
	env := make(map[string]string, len(environ))
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	r := reader{env: env, read: map[string]bool{}}
	cfg := &Config{
		DatabaseURL: r.str("DATABASE_URL", DefaultDatabaseURL),
		LLM: LLM{
			BaseURL:     r.url("OPENAI_BASE_URL", analysis.DefaultBaseURL),
			APIKey:      r.str("OPENAI_API_KEY", ""),
			Model:       r.str("POSTCALL_MODEL", analysis.DefaultModel),
			RPM:         r.positiveInt("POSTCALL_LLM_RPM", analysis.DefaultRPM),
			TPM:         r.positiveInt("POSTCALL_LLM_TPM", analysis.DefaultTPM),
			Concurrency: r.positiveInt("POSTCALL_LLM_CONCURRENCY", analysis.DefaultConcurrency),
			Demo:        r.flag("POSTCALL_DEMO_MODEL"),
			FlexFallbackAfter: r.durationUpTo("POSTCALL_FLEX_FALLBACK_AFTER", analysis.DefaultFlexFallbackAfter,
				MaxFlexFallbackAfter, "5m"),
			BatchPollInterval: r.durationBetween("POSTCALL_BATCH_POLL_INTERVAL", jobs.DefaultBatchPollInterval,
				time.Second, MaxBatchPollInterval, "1m"),
		},
		S3: S3{
			Bucket:          r.str("S3_BUCKET", ""),
			Endpoint:        r.url("S3_ENDPOINT", ""),
			Region:          r.str("S3_REGION", r.str("AWS_REGION", recording.DefaultRegion)),
			ForcePathStyle:  r.flag("S3_FORCE_PATH_STYLE"),
			URLTTL:          r.duration("POSTCALL_RECORDING_URL_TTL", recording.DefaultURLTTL),
			AccessKeyID:     r.str("AWS_ACCESS_KEY_ID", ""),
			SecretAccessKey: r.str("AWS_SECRET_ACCESS_KEY", ""),
			SessionToken:    r.str("AWS_SESSION_TOKEN", ""),
		},
		HTTPAddr:                r.addr("POSTCALL_HTTP_ADDR", DefaultHTTPAddr),
		APIToken:                r.str("POSTCALL_API_TOKEN", ""),
		PurgeSchedule:           r.schedule("POSTCALL_PURGE_SCHEDULE", jobs.DefaultPurgeSchedule),
		RetentionSchedule:       r.schedule("POSTCALL_RETENTION_SCHEDULE", jobs.DefaultRetentionSchedule),
		PurgeAfterDays:          r.days("POSTCALL_PURGE_AFTER_DAYS", retention.DefaultPurgeAfterDays),
		HardDeleteAfterDays:     r.days("POSTCALL_HARD_DELETE_AFTER_DAYS", retention.DefaultHardDeleteAfterDays),
		RetentionBatchSize:      r.positiveInt("POSTCALL_RETENTION_BATCH_SIZE", retention.DefaultBatchSize),
		RetentionPause:          r.durationUpTo("POSTCALL_RETENTION_PAUSE", retention.DefaultPause, time.Minute, "100ms"),
		AllowPrivateTargets:     r.flag("POSTCALL_ALLOW_PRIVATE_TARGETS"),
		ShutdownTimeout:         r.duration("POSTCALL_SHUTDOWN_TIMEOUT", jobs.DefaultSoftStopTimeout),
		DBMaxConns:              r.positiveInt("POSTCALL_DB_MAX_CONNS", DefaultDBMaxConns),
		DeliveryConcurrency:     r.positiveInt("POSTCALL_DELIVERY_CONCURRENCY", jobs.DefaultDeliveryConcurrency),
		RescueAfter:             r.rescueAfter("POSTCALL_RESCUE_AFTER", jobs.DefaultRescueAfter),
		WorkerDeadAfter:         r.durationAtLeast("POSTCALL_WORKER_DEAD_AFTER", heartbeat.DefaultDeadAfter, heartbeat.MinDeadAfter, "30s"),
		PublicURL:               r.url("POSTCALL_PUBLIC_URL", ""),
		LinkSecret:              r.str("POSTCALL_LINK_SECRET", ""),
		IntegrationDisableAfter: r.duration("POSTCALL_INTEGRATION_DISABLE_AFTER", crm.DefaultDisableWindow),
		PricesFile:              r.str("POSTCALL_PRICES_FILE", ""),
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
	cfg.Prices = pricing.Default()
	if cfg.PricesFile != "" {
		// The file is read now, so that a bad one fails at start, naming
		// itself and every bad key.
		prices, err := pricing.Load(cfg.PricesFile)
		if err != nil {
			r.fail("POSTCALL_PRICES_FILE", "%v", err)
		} else {
			cfg.Prices = prices
		}
	}
	if cfg.S3.URLTTL > recording.MaxURLTTL {
		cfg.S3.URLTTL = recording.MaxURLTTL
		cfg.S3.URLTTLClamped = true
	}
	// Every variable Load reads is known (so each is read whatever the
	// others say); any other POSTCALL_ variable is a typo that would
	// otherwise silently fall back to a default. They are listed first.
	var unknown []string
	for k := range env {
		if strings.HasPrefix(k, "POSTCALL_") && !r.read[k] {
			unknown = append(unknown, k+": unknown variable (misspelt?)")
		}
	}
	slices.Sort(unknown)
	if problems := append(unknown, r.problems...); len(problems) > 0 {
		return nil, errors.New("invalid configuration:\n  " + strings.Join(problems, "\n  "))
	}
	return cfg, nil
}

// reader collects problems instead of stopping at the first, so that one
// start shows everything to fix.
type reader struct {
	env map[string]string
	// read holds every variable Load asked for: the known variables.
	read     map[string]bool
	problems []string
}

func (r *reader) fail(name, format string, args ...any) {
	r.problems = append(r.problems, name+": "+fmt.Sprintf(format, args...))
}

func (r *reader) str(name, def string) string {
	r.read[name] = true
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

// durationUpTo reads a duration from 0 to most; example is one to suggest.
func (r *reader) durationUpTo(name string, def, most time.Duration, example string) time.Duration {
	v := r.str(name, "")
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 || d > most {
		r.fail(name, "%q must be a duration from 0s to %s, such as %s", v, most, example)
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

// durationBetween reads a duration from least to most; example is one to
// suggest.
func (r *reader) durationBetween(name string, def, least, most time.Duration, example string) time.Duration {
	v := r.str(name, "")
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < least || d > most {
		r.fail(name, "%q must be a duration from %s to %s, such as %s", v, least, most, example)
		return def
	}
	return d
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
	return r.durationAtLeast(name, def, jobs.MinRescueAfter, "15m")
}

// durationAtLeast reads a duration of at least least; example is one to
// suggest.
func (r *reader) durationAtLeast(name string, def, least time.Duration, example string) time.Duration {
	v := r.str(name, "")
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < least {
		r.fail(name, "%q must be a duration of at least %s, such as %s", v, least, example)
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
