package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/postcall/postcall/agent"
	"github.com/postcall/postcall/analysis"
	"github.com/postcall/postcall/analysis/openaitest"
	"github.com/postcall/postcall/internal/wait"
	"github.com/postcall/postcall/pipeline"
)

// Rate limits of the fake provider in the limits scenario, per simulated
// minute (-limits-window): high enough for a few hundred requests in a run,
// so that 1% of 429s is a few requests, not a fraction of one.
const (
	limitsTPM = 300_000
	limitsRPM = 1_000
	// limitsConcurrency is each worker's LLM concurrency (the default).
	limitsConcurrency = 16
	// fixedBudget is the output budget every request had before budgets
	// were sized: the baseline of the budget comparison.
	fixedBudget = 4096
)

// limitsRun is one measurement of the limits scenario.
type limitsRun struct {
	name    string
	workers int
	fixed   bool

	// Measured over the window after the warm-up.
	admitted, limited int
	acceptedTokens    int64
	// carried is what the provider's token bucket held at the start of the
	// measurement less what it held at its end: tokens accepted from the
	// warm-up's leftover rather than from the window's refill.
	carried float64
	// retried counts answers cut off at the sized budget and sent again
	// with the full one.
	retried    int64
	runs       int64
	completion int64 // completion tokens of the answers
	reserved   int64 // max_tokens of the same requests
	failures   int64 // runs that ended in an error (after the client's retries)
}

// runLimits measures how much of a provider's rate limit postcall uses.
// A fake provider (openaitest.WithRateLimits) enforces RPM and TPM as
// OpenAI does: prompt estimate plus max_tokens charged on arrival, 429 with
// retry-after when a request does not fit, the x-ratelimit-* headers on
// every answer. Workers (each its own OpenAI client with the default 16
// requests in flight, told the same limits, as a user would configure
// POSTCALL_LLM_RPM/TPM) run analysis and QC of synthetic calls without a
// pause. Reported: tokens accepted per minute against the limit (target
// >= 90%) and the share of requests answered 429 (target < 1%), for one
// worker and three sharing the limit; and runs per minute with the sized
// output budget against the old fixed 4,096.
func runLimits(ctx context.Context, e *env) (*result, error) {
	plans, err := agent.ParsePlans([]byte(fmt.Sprintf(planYAML, "https://hooks.example.com/bench", webhookSecret)))
	if err != nil {
		return nil, fmt.Errorf("benchmark plan: %w", err)
	}
	recs, err := makeCalls("limits", 200, 7, firstCallStart())
	if err != nil {
		return nil, err
	}
	inputs := make([]analysis.Input, len(recs))
	for i, r := range recs {
		inputs[i] = pipeline.InputFromRecord(r)
	}
	runs := []*limitsRun{
		{name: "1 worker", workers: 1},
		{name: "3 workers", workers: 3},
		{name: "1 worker, fixed 4,096", workers: 1, fixed: true},
	}
	window, measure := e.opts.limitsWindow, e.opts.limitsDuration
	warm := 2 * window
	var wg sync.WaitGroup
	errs := make([]error, len(runs))
	for i, r := range runs {
		wg.Go(func() {
			plan := plans[0]
			if r.fixed {
				a, q := *plan.Analysis, *plan.QC
				a.MaxTokens, q.MaxTokens = fixedBudget, fixedBudget
				plan.Analysis, plan.QC = &a, &q
			}
			errs[i] = r.measure(ctx, &plan, inputs, window, warm, measure)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	minutes := measure.Seconds() / window.Seconds()
	limitPerMinute := float64(limitsTPM)
	var metrics []metric
	for _, r := range runs[:2] {
		// Tokens accepted from the window's refill: what the provider's
		// bucket still held from the warm-up is not the limit's.
		perMinute := (float64(r.acceptedTokens) - r.carried) / minutes
		share429 := 100 * float64(r.limited) / float64(max(1, r.admitted+r.limited))
		e.progress("limits, %s: %.0f tokens/min accepted of %d (%.1f%%; %.0f more from the bucket's leftover), %d requests, "+
			"%d answered 429 (%.2f%%), %d runs failed, %d answers cut off and retried",
			r.name, perMinute, limitsTPM, 100*perMinute/limitPerMinute, r.carried, r.admitted+r.limited, r.limited, share429,
			r.failures, r.retried)
		metrics = append(metrics,
			metric{Name: r.name + ": tokens/min accepted, % of TPM", Value: 100 * perMinute / limitPerMinute, Unit: "%", Decimals: 1, Target: atLeast(90)},
			metric{Name: r.name + ": requests answered 429", Value: share429, Unit: "%", Decimals: 2, Target: atMost(1)},
		)
	}
	sized, fixed := runs[0], runs[2]
	sizedRate, fixedRate := float64(sized.runs)/minutes, float64(fixed.runs)/minutes
	e.progress("limits, output budget: %.0f runs/min sized (%.0f%% of reserved output used) vs %.0f runs/min at a fixed 4,096 (%.0f%% used)",
		sizedRate, 100*float64(sized.completion)/float64(max(1, sized.reserved)), fixedRate,
		100*float64(fixed.completion)/float64(max(1, fixed.reserved)))
	metrics = append(metrics,
		metric{Name: "runs/min, sized output budget", Value: sizedRate, Unit: "runs/min", Decimals: 0},
		metric{Name: "runs/min, fixed max_tokens 4,096", Value: fixedRate, Unit: "runs/min", Decimals: 0},
		metric{Name: "sized vs fixed budget, runs/min ratio", Value: sizedRate / max(fixedRate, 1e-9), Unit: "x", Decimals: 2},
		metric{Name: "reserved output used, sized budget", Value: 100 * float64(sized.completion) / float64(max(1, sized.reserved)), Unit: "%", Decimals: 0},
		metric{Name: "reserved output used, fixed 4,096", Value: 100 * float64(fixed.completion) / float64(max(1, fixed.reserved)), Unit: "%", Decimals: 0},
	)
	return &result{
		Metrics: metrics,
		Notes: []string{fmt.Sprintf("A simulated minute: the fake provider's limits are %d tokens and %d requests per %s "+
			"window (buckets holding one window's worth, refilled continuously), reported in its headers as the per-minute "+
			"rates %d TPM and %d RPM, which is what each worker is configured with (POSTCALL_LLM_TPM/RPM); every per-minute "+
			"number here is per simulated minute. Each run: %s of warm-up (the provider's full bucket at start is spent), "+
			"then %s measured; tokens accepted per minute leave out what the provider's bucket still held from the warm-up "+
			"(its level at the start of the measurement less its level at the end) (%.0f simulated minutes), all three runs at once against fakes of their own. Workers run "+
			"analysis and QC of %d synthetic calls of the benchmark agent (%d fields, %d checklist items) with %d requests "+
			"in flight each and no pause; answers of 50-300 tokens. Tokens accepted: what the fake charged the requests it "+
			"admitted (prompt tokens + max_tokens). The sized budget starts from the schema's bound and follows the "+
			"answers' 99th percentile (+25%%, at least %d) once %d answers of a kind are in; the fixed run sets "+
			"analysis.max_tokens and qc.max_tokens to 4096, the old budget of every request.",
			limitsTPM, limitsRPM, window, int(float64(limitsTPM)*time.Minute.Seconds()/window.Seconds()),
			int(float64(limitsRPM)*time.Minute.Seconds()/window.Seconds()), warm, measure, minutes, len(inputs),
			len(plans[0].Analysis.Fields), len(plans[0].QC.Checklist), limitsConcurrency, analysis.BudgetFloor,
			analysis.BudgetMinAnswers)},
	}, nil
}

// measure runs the workers for warm+measure and keeps the numbers of the
// measured part.
func (r *limitsRun) measure(ctx context.Context, plan *agent.Plan, inputs []analysis.Input, window, warm, measure time.Duration) error {
	srv, stop := fakeModel(
		openaitest.WithRateLimits(openaitest.RateLimits{TPM: limitsTPM, RPM: limitsRPM, Window: window}),
		openaitest.WithDefault(variedAnswers()),
	)
	defer stop()
	perMinute := func(n int) int { return int(float64(n) * time.Minute.Seconds() / window.Seconds()) }
	start := time.Now()
	from, until := start.Add(warm), start.Add(warm+measure)
	runCtx, cancel := context.WithDeadline(ctx, until)
	defer cancel()
	hist := &budgetHistory{}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range r.workers {
		client, err := analysis.NewOpenAI(analysis.OpenAIConfig{
			BaseURL: srv.URL, APIKey: srv.APIKey, RPM: perMinute(limitsRPM), TPM: perMinute(limitsTPM),
			Concurrency: limitsConcurrency,
		})
		if err != nil {
			return err
		}
		a := &analysis.Analyzer{Model: client, DefaultModel: "gpt-4.1-mini"}
		for range limitsConcurrency {
			wg.Go(func() {
				for runCtx.Err() == nil {
					n := next.Add(1)
					in := inputs[int(n)%len(inputs)]
					kind := analysis.KindAnalysis
					if n%2 == 1 {
						kind = analysis.KindQC
					}
					in.History = hist.get(kind)
					var requests []analysis.RequestRecord
					var err error
					if kind == analysis.KindAnalysis {
						var res *analysis.AnalysisResult
						res, err = a.Analyze(runCtx, plan, 1, in)
						requests = res.Requests
					} else {
						var res *analysis.QCResult
						res, err = a.QC(runCtx, plan, 1, in)
						requests = res.Requests
					}
					done := time.Now()
					if runCtx.Err() != nil {
						return
					}
					hist.add(kind, requests)
					if done.Before(from) {
						continue
					}
					if err != nil {
						atomic.AddInt64(&r.failures, 1)
						// A job would snooze for the wait; here the
						// goroutine waits, as its job's slot would.
						if d, ok := analysis.RetryAfter(err); ok {
							_ = wait.Sleep(runCtx, d) // ends with the run
						}
						continue
					}
					atomic.AddInt64(&r.runs, 1)
					for _, q := range requests {
						if q.Purpose == analysis.PurposeFullBudget {
							atomic.AddInt64(&r.retried, 1)
						}
						atomic.AddInt64(&r.completion, int64(q.Usage.Completion))
						atomic.AddInt64(&r.reserved, int64(q.MaxTokens))
					}
				}
			})
		}
	}
	wg.Wait()
	first := true
	var last openaitest.Admission
	for _, adm := range srv.Admissions() {
		if adm.At.Before(from) || !adm.At.Before(until) {
			continue
		}
		if first {
			first = false
			r.carried = adm.Remaining + float64(adm.Charge)
			if adm.Limited {
				r.carried = adm.Remaining
			}
		}
		last = adm
		if adm.Limited {
			r.limited++
			continue
		}
		r.admitted++
		r.acceptedTokens += int64(adm.Charge)
	}
	if !first {
		r.carried -= last.Remaining
	}
	return nil
}

// budgetHistory is the benchmark's stand-in for the stored answers the
// pipeline sizes budgets from (store.CompletionHistory): the completion
// tokens of the latest answers per kind, read fresh by every run.
type budgetHistory struct {
	mu     sync.Mutex
	tokens map[string][]int
}

// historyDepth is how many answers per kind it keeps: about the
// pipeline's latest 500 runs, most of which have one request.
const historyDepth = 500

func (h *budgetHistory) add(kind string, requests []analysis.RequestRecord) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.tokens == nil {
		h.tokens = map[string][]int{}
	}
	for _, q := range requests {
		if q.Usage.Completion > 0 {
			h.tokens[kind] = append(h.tokens[kind], q.Usage.Completion)
		}
	}
	if n := len(h.tokens[kind]); n > historyDepth {
		h.tokens[kind] = h.tokens[kind][n-historyDepth:]
	}
}

func (h *budgetHistory) get(kind string) analysis.History {
	h.mu.Lock()
	defer h.mu.Unlock()
	ts := slices.Clone(h.tokens[kind])
	if len(ts) == 0 {
		return analysis.History{}
	}
	slices.Sort(ts)
	i := int(float64(len(ts))*analysis.BudgetPercentile+0.999999) - 1
	return analysis.History{Answers: len(ts), P99: ts[min(max(i, 0), len(ts)-1)]}
}

// variedAnswers answers like openaitest.Valid with every string value
// replaced by 3 to 30 words, so that answers take 50-300 tokens, as real
// ones of a plan like the benchmark's do, and vary like them.
func variedAnswers() openaitest.Responder {
	valid := openaitest.Valid()
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(11, 0x11))
	words := strings.Fields("the homeowner asked about roof age shading financing and a video consultation next week " +
		"with an advisor after work because the spouse must be present and the bill is high in summer")
	return func(req *openaitest.Request) openaitest.Reply {
		rep := valid(req)
		var v any
		if rep.Status != 0 || json.Unmarshal([]byte(rep.Content), &v) != nil {
			return rep
		}
		mu.Lock()
		v = vary(v, func() string {
			n := 3 + rng.IntN(28)
			out := make([]string, n)
			for i := range out {
				out[i] = words[rng.IntN(len(words))]
			}
			return strings.Join(out, " ")
		})
		mu.Unlock()
		b, _ := json.Marshal(v)
		rep.Content = string(b)
		return rep
	}
}

// vary replaces every string in a decoded JSON value.
func vary(v any, text func() string) any {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			t[k] = vary(x, text)
		}
	case []any:
		for i, x := range t {
			t[i] = vary(x, text)
		}
	case string:
		if t == "example" {
			return text()
		}
	}
	return v
}
