package metrics

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"
)

// DefaultScrapeTimeout bounds the database queries of one scrape: a slow
// database must not hold a scrape past Prometheus's own timeout (10s by
// default).
const DefaultScrapeTimeout = 3 * time.Second

// Querier runs a query; a pgxpool.Pool is one.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// liveStates are River's states of jobs that are still to be worked. Jobs
// in finalized states (completed, cancelled, discarded) are history, not
// depth, and counting them would read the whole table.
var liveStates = []string{"available", "pending", "retryable", "running", "scheduled"}

// DBCollector reports, at scrape time, what the database holds: River's
// queue depth by queue and state, and the totals of retention runs. The
// values are the same on every worker of a database: aggregate them across
// instances with max, not sum.
type DBCollector struct {
	db      Querier
	schema  string
	queues  []string
	timeout time.Duration

	queueJobs     *prometheus.Desc
	oldest        *prometheus.Desc
	retentionRuns *prometheus.Desc
	retained      *prometheus.Desc
	objects       *prometheus.Desc
	lastSuccess   *prometheus.Desc
}

// NewDBCollector returns a collector reading db. schema is the schema of the
// tables ("" for the search_path); queues are reported with 0 when empty;
// timeout bounds one scrape's queries (0: DefaultScrapeTimeout).
func NewDBCollector(db Querier, schema string, queues []string, timeout time.Duration) *DBCollector {
	if timeout <= 0 {
		timeout = DefaultScrapeTimeout
	}
	name := func(s string) string { return prometheus.BuildFQName(namespace, "", s) }
	return &DBCollector{
		db: db, schema: schema, queues: queues, timeout: timeout,
		queueJobs: prometheus.NewDesc(name("queue_jobs"),
			"River jobs still to be worked, by queue and state (available, pending, retryable, running, scheduled).",
			[]string{"queue", "state"}, nil),
		oldest: prometheus.NewDesc(name("queue_oldest_available_seconds"),
			"Age of the oldest available River job by queue: how far behind the queue is; 0 when none waits.",
			[]string{"queue"}, nil),
		retentionRuns: prometheus.NewDesc(name("retention_runs_total"),
			"Retention runs (dry runs excluded) by kind (purge, hard_delete, erasure) and status.",
			[]string{"kind", "status"}, nil),
		retained: prometheus.NewDesc(name("retention_calls_total"),
			"Calls the retention runs acted on, by run kind and action (purged: personal data erased; deleted: hard-deleted).",
			[]string{"kind", "action"}, nil),
		objects: prometheus.NewDesc(name("retention_recordings_deleted_total"),
			"Recording objects the bucket confirmed deleted, by retention run kind.",
			[]string{"kind"}, nil),
		lastSuccess: prometheus.NewDesc(name("retention_last_success_timestamp_seconds"),
			"When a retention run of this kind last finished without errors (Unix time).",
			[]string{"kind"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *DBCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.queueJobs, c.oldest, c.retentionRuns, c.retained, c.objects, c.lastSuccess} {
		ch <- d
	}
}

// Collect implements prometheus.Collector. A query that fails or times out
// is reported as an error of the scrape (see Handler), and the other
// metrics are still collected.
func (c *DBCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	if err := c.collectQueues(ctx, ch); err != nil {
		ch <- prometheus.NewInvalidMetric(c.queueJobs, err)
	}
	if err := c.collectRetention(ctx, ch); err != nil {
		ch <- prometheus.NewInvalidMetric(c.retentionRuns, err)
	}
}

func (c *DBCollector) collectQueues(ctx context.Context, ch chan<- prometheus.Metric) error {
	rows, err := c.db.Query(ctx, `
		SELECT queue, state::text, count(*),
			coalesce(extract(epoch FROM now() - min(scheduled_at)), 0)::float8
		FROM `+c.table("river_job")+`
		WHERE state::text = ANY($1)
		GROUP BY queue, state`, liveStates)
	if err != nil {
		return fmt.Errorf("queue depth: %w", err)
	}
	depth := map[[2]string]float64{}
	oldest := map[string]float64{}
	for _, q := range c.queues {
		oldest[q] = 0
		for _, s := range liveStates {
			depth[[2]string{q, s}] = 0
		}
	}
	var (
		queue, state string
		n            int64
		age          float64
	)
	_, err = pgx.ForEachRow(rows, []any{&queue, &state, &n, &age}, func() error {
		depth[[2]string{queue, state}] = float64(n)
		if _, ok := oldest[queue]; !ok {
			oldest[queue] = 0
		}
		if state == "available" {
			oldest[queue] = max(age, 0)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("queue depth: %w", err)
	}
	for k, v := range depth {
		ch <- prometheus.MustNewConstMetric(c.queueJobs, prometheus.GaugeValue, v, k[0], k[1])
	}
	for q, v := range oldest {
		ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, v, q)
	}
	return nil
}

func (c *DBCollector) collectRetention(ctx context.Context, ch chan<- prometheus.Metric) error {
	rows, err := c.db.Query(ctx, `
		SELECT kind, status, count(*), sum(purged), sum(deleted), sum(objects_deleted),
			extract(epoch FROM max(finished_at) FILTER (WHERE status = 'finished'))::float8
		FROM `+c.table("retention_runs")+`
		WHERE NOT dry_run
		GROUP BY kind, status`)
	if err != nil {
		return c.retentionErr(err)
	}
	type totals struct {
		purged, deleted, objects float64
		lastSuccess              *float64
	}
	byKind := map[string]*totals{}
	var (
		kind, status                   string
		runs, purged, deleted, objects int64
		last                           *float64
	)
	_, err = pgx.ForEachRow(rows, []any{&kind, &status, &runs, &purged, &deleted, &objects, &last}, func() error {
		ch <- prometheus.MustNewConstMetric(c.retentionRuns, prometheus.CounterValue, float64(runs), kind, status)
		t := byKind[kind]
		if t == nil {
			t = &totals{}
			byKind[kind] = t
		}
		t.purged += float64(purged)
		t.deleted += float64(deleted)
		t.objects += float64(objects)
		if last != nil && (t.lastSuccess == nil || *last > *t.lastSuccess) {
			v := *last
			t.lastSuccess = &v
		}
		return nil
	})
	if err != nil {
		return c.retentionErr(err)
	}
	for k, t := range byKind {
		ch <- prometheus.MustNewConstMetric(c.retained, prometheus.CounterValue, t.purged, k, "purged")
		ch <- prometheus.MustNewConstMetric(c.retained, prometheus.CounterValue, t.deleted, k, "deleted")
		ch <- prometheus.MustNewConstMetric(c.objects, prometheus.CounterValue, t.objects, k)
		if t.lastSuccess != nil {
			ch <- prometheus.MustNewConstMetric(c.lastSuccess, prometheus.GaugeValue, *t.lastSuccess, k)
		}
	}
	return nil
}

// retentionErr treats a database without the retention tables (an older
// schema) as having nothing to report.
func (c *DBCollector) retentionErr(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P01" { // undefined_table
		return nil
	}
	return fmt.Errorf("retention runs: %w", err)
}

func (c *DBCollector) table(name string) string {
	if c.schema == "" {
		return name
	}
	return pgx.Identifier{c.schema, name}.Sanitize()
}
