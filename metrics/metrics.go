// Package metrics defines postcall's Prometheus metrics: River jobs by kind
// and outcome, queue depth, LLM requests, latency, tokens, cost and limit waits,
// CRM deliveries, and retention counts. Observations come in through the
// Observe methods, which the domain packages' observer hooks are wired to in
// internal/app; what lives in the database (queue depth, retention runs) is read at
// scrape time. Nothing is registered globally: New takes the registry.
package metrics

import (
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/postcall/postcall/analysis"
	"github.com/postcall/postcall/jobs"
	"github.com/postcall/postcall/pipeline"
	"github.com/postcall/postcall/store"
)

// namespace prefixes every metric of postcall.
const namespace = "postcall"

// Options configures New. The zero value registers the observed metrics
// only.
type Options struct {
	// DB, when set, is read at every scrape for queue depth and retention
	// totals (see DBCollector). Default nil: those metrics are absent.
	DB Querier
	// Schema is the schema of River's and postcall's tables. Default "":
	// the connection's search_path.
	Schema string
	// Queues are reported with a depth of 0 when they hold no job, so that
	// graphs and alerts see them. Default none: only queues holding jobs.
	Queues []string
	// ScrapeTimeout bounds the database queries of one scrape. Default
	// DefaultScrapeTimeout.
	ScrapeTimeout time.Duration
	// Runtime registers the Go runtime and process collectors (go_*,
	// process_*). Default false.
	Runtime bool
	// WorkerDeadAfter decides which worker processes count as live (with
	// DB). Default heartbeat.DefaultDeadAfter.
	WorkerDeadAfter time.Duration
}

// Metrics holds postcall's observed metrics. Its methods are safe for
// concurrent use and never block; a nil *Metrics ignores observations.
type Metrics struct {
	jobs      *prometheus.CounterVec
	jobRun    *prometheus.HistogramVec
	jobWait   *prometheus.HistogramVec
	llmReqs   *prometheus.CounterVec
	llmTime   *prometheus.HistogramVec
	llmWait   *prometheus.HistogramVec
	prompt    *prometheus.CounterVec
	complete  *prometheus.CounterVec
	cached    *prometheus.CounterVec
	created   *prometheus.CounterVec
	cost      *prometheus.CounterVec
	attempts  *prometheus.CounterVec
	delivered *prometheus.CounterVec
	crmTime   *prometheus.HistogramVec
	recovered *prometheus.CounterVec
}

// New creates postcall's metrics and registers them, and with opts.DB the
// database collector, on reg.
func New(reg prometheus.Registerer, opts Options) (*Metrics, error) {
	m := &Metrics{
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "jobs_total",
			Help: "River job attempts finished by this process, by job kind, queue and outcome (completed, retryable, discarded, cancelled, snoozed, interrupted).",
		}, []string{"kind", "queue", "outcome"}),
		jobRun: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "job_run_seconds",
			Help:    "Time a River job attempt ran, by job kind.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600},
		}, []string{"kind"}),
		jobWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "job_queue_wait_seconds",
			Help:    "Time a River job waited between becoming available and starting, by queue.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600},
		}, []string{"queue"}),
		llmReqs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "llm_requests_total",
			Help: "HTTP attempts to the LLM endpoint, by model and code (the HTTP status, or network or canceled when no response arrived).",
		}, []string{"model", "code"}),
		llmTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "llm_request_duration_seconds",
			Help:    "Round trip of an HTTP attempt to the LLM endpoint, by model.",
			Buckets: []float64{.1, .25, .5, 1, 2, 4, 8, 15, 30, 60, 120},
		}, []string{"model"}),
		llmWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "llm_limit_wait_seconds",
			Help:    "Time an LLM attempt waited on the client-side limits (POSTCALL_LLM_RPM, _TPM, _CONCURRENCY) before it was sent, by model.",
			Buckets: []float64{.001, .01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"model"}),
		prompt: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "llm_prompt_tokens_total",
			Help: "Prompt tokens sent to the LLM endpoint, cached ones included, by model.",
		}, []string{"model"}),
		complete: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "llm_completion_tokens_total",
			Help: "Completion tokens received from the LLM endpoint, by model.",
		}, []string{"model"}),
		cached: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "llm_cached_tokens_total",
			Help: "Prompt tokens the provider read from its prompt cache, by model: a part of llm_prompt_tokens_total.",
		}, []string{"model"}),
		created: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "llm_cache_created_tokens_total",
			Help: "Prompt tokens the provider wrote to its prompt cache, where it reports them (OpenAI does not), by model.",
		}, []string{"model"}),
		cost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "llm_cost_usd_total",
			Help: "US dollars spent on LLM requests stored by this process, from the price table at the tier that served each, by model; unpriced requests are not counted.",
		}, []string{"model"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "crm_delivery_attempts_total",
			Help: "CRM and webhook delivery attempts, by integration type and outcome (delivered, retry, permanent, disable, skipped).",
		}, []string{"type", "outcome"}),
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "crm_deliveries_total",
			Help: "CRM and webhook deliveries that reached a final status, by integration type and status (delivered, failed, disabled).",
		}, []string{"type", "status"}),
		crmTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "crm_delivery_duration_seconds",
			Help:    "Round trip of a delivery attempt that reached the receiver, by integration type.",
			Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 15},
		}, []string{"type"}),
		recovered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "jobs_recovered_total",
			Help: "River jobs this process made available again because the worker process running them died (cause dead: no heartbeat for POSTCALL_WORKER_DEAD_AFTER) or stopped with them unfinished (cause stopped).",
		}, []string{"cause"}),
	}
	cs := []prometheus.Collector{
		m.jobs, m.jobRun, m.jobWait, m.llmReqs, m.llmTime, m.llmWait, m.prompt, m.complete, m.cached, m.created,
		m.cost, m.attempts, m.delivered, m.crmTime, m.recovered,
	}
	if opts.DB != nil {
		cs = append(cs, NewDBCollector(opts.DB, opts.Schema, opts.Queues, opts.ScrapeTimeout),
			newWorkersCollector(opts.DB, opts.WorkerDeadAfter, opts.ScrapeTimeout))
	}
	if opts.Runtime {
		cs = append(cs, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	return m, nil
}

// ObserveJob counts one finished River job attempt (jobs.WatchJobs).
func (m *Metrics) ObserveJob(e jobs.JobEvent) {
	if m == nil {
		return
	}
	m.jobs.WithLabelValues(e.Kind, e.Queue, e.Outcome).Inc()
	m.jobRun.WithLabelValues(e.Kind).Observe(e.RunDuration.Seconds())
	m.jobWait.WithLabelValues(e.Queue).Observe(e.QueueWait.Seconds())
}

// ObserveRecovered counts jobs recovered from a dead or stopped worker
// process (jobs.ClientConfig.ObserveRecovered).
func (m *Metrics) ObserveRecovered(cause string, n int) {
	if m == nil {
		return
	}
	m.recovered.WithLabelValues(cause).Add(float64(n))
}

// ObserveLLM counts one HTTP attempt to the LLM endpoint
// (analysis.OpenAIConfig.Observer).
func (m *Metrics) ObserveLLM(o analysis.Observation) {
	if m == nil {
		return
	}
	m.llmReqs.WithLabelValues(o.Model, llmCode(o)).Inc()
	m.llmWait.WithLabelValues(o.Model).Observe(o.LimitWait.Seconds())
	if o.StatusCode != 0 {
		m.llmTime.WithLabelValues(o.Model).Observe(o.Latency.Seconds())
	}
	for _, t := range []struct {
		vec *prometheus.CounterVec
		n   int
	}{{m.prompt, o.Usage.Prompt}, {m.complete, o.Usage.Completion}, {m.cached, o.Usage.CachedRead}, {m.created, o.Usage.CacheCreated}} {
		if t.n > 0 {
			t.vec.WithLabelValues(o.Model).Add(float64(t.n))
		}
	}
}

// ObserveCost counts what one stored LLM request cost
// (pipeline.Service.CostObserver).
func (m *Metrics) ObserveCost(o pipeline.CostObservation) {
	if m == nil {
		return
	}
	m.cost.WithLabelValues(o.Model).Add(o.USD)
}

// llmCode is the code label of an LLM attempt: its HTTP status, or why
// there is none.
func llmCode(o analysis.Observation) string {
	switch {
	case o.StatusCode != 0:
		return strconv.Itoa(o.StatusCode)
	case o.ErrorCode == "context_canceled":
		return "canceled"
	default:
		return "network"
	}
}

// ObserveDelivery counts one recorded delivery attempt
// (pipeline.Deliveries.Observer).
func (m *Metrics) ObserveDelivery(o pipeline.DeliveryObservation) {
	if m == nil {
		return
	}
	m.attempts.WithLabelValues(o.Type, o.Outcome).Inc()
	if o.Status != store.DeliveryPending {
		m.delivered.WithLabelValues(o.Type, string(o.Status)).Inc()
	}
	if o.StatusCode != 0 {
		m.crmTime.WithLabelValues(o.Type).Observe(o.Latency.Seconds())
	}
}

// Handler serves the registry's metrics in the Prometheus exposition format.
// A collector that fails (the database did not answer in time) is logged
// and left out; the other metrics are still served.
func Handler(reg *prometheus.Registry, log *slog.Logger) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      errorLog{log},
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      reg,
	})
}

// errorLog adapts slog to promhttp's logger.
type errorLog struct{ log *slog.Logger }

func (l errorLog) Println(v ...any) {
	l.log.Warn("metrics: "+fmt.Sprint(v...), slog.String("component", "metrics"))
}
