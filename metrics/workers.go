package metrics

import (
	"cmp"
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/postcall/postcall/heartbeat"
)

// workersCollector reports, at scrape time, how many worker processes beat
// within the dead-after window. The value is the same on every worker of a
// database: aggregate it across instances with max, not sum.
type workersCollector struct {
	db        Querier
	deadAfter time.Duration
	timeout   time.Duration
	live      *prometheus.Desc
}

func newWorkersCollector(db Querier, deadAfter, timeout time.Duration) *workersCollector {
	return &workersCollector{
		db: db, deadAfter: cmp.Or(deadAfter, heartbeat.DefaultDeadAfter), timeout: cmp.Or(timeout, DefaultScrapeTimeout),
		live: prometheus.NewDesc(prometheus.BuildFQName(namespace, "", "workers_live"),
			"Worker processes whose heartbeat is younger than POSTCALL_WORKER_DEAD_AFTER (postcall workers lists them).",
			nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *workersCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.live }

// Collect implements prometheus.Collector.
func (c *workersCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	n, err := heartbeat.CountLive(ctx, c.db, c.deadAfter)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.live, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.live, prometheus.GaugeValue, float64(n))
}
