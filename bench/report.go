package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// machine describes where a run happened.
type machine struct {
	CPUs       int
	CPUModel   string
	Memory     string
	OS         string
	Go         string
	PostgreSQL string
	// Commit is the repository's HEAD and whether the tree had changes;
	// empty outside a git checkout.
	Commit string
	// Load is the share of the CPUs other processes kept busy just before
	// the run; negative when unknown.
	Load float64
}

// describeMachine collects the machine's description; what it cannot read
// it leaves out.
func describeMachine(ctx context.Context, db *database) machine {
	m := machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH, Load: -1}
	cpu := startCPU()
	select {
	case <-ctx.Done():
	case <-time.After(time.Second):
		if u, ok := cpu.usage(); ok {
			m.Load = u.Busy - u.Self
		}
	}
	if v, err := db.serverVersion(ctx); err == nil {
		m.PostgreSQL = v
	}
	m.CPUModel = procField("/proc/cpuinfo", "model name")
	if kb := procField("/proc/meminfo", "MemTotal"); kb != "" {
		var n int64
		if _, err := fmt.Sscanf(kb, "%d kB", &n); err == nil {
			m.Memory = fmt.Sprintf("%.1f GiB", float64(n)/(1<<20))
		}
	}
	if rel, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.OS += ", kernel " + strings.TrimSpace(string(rel))
	}
	if out, err := exec.CommandContext(ctx, "git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		m.Commit = strings.TrimSpace(string(out))
		if st, err := exec.CommandContext(ctx, "git", "status", "--porcelain").Output(); err == nil && len(st) > 0 {
			m.Commit += " with uncommitted changes"
		}
	}
	return m
}

// procField is the value of the first "name: value" line of a /proc file.
func procField(path, name string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == name {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func (m machine) cpus() string {
	s := fmt.Sprintf("%d", m.CPUs)
	if m.CPUModel != "" {
		s += " (" + m.CPUModel + ")"
	}
	return s
}

// busyWarning is the loadWarning threshold.
const busyWarning = 0.15

// loadWarning warns that other processes were using the machine; "" when
// they were not.
func (m machine) loadWarning() string {
	if m.Load < busyWarning {
		return ""
	}
	return fmt.Sprintf("Other processes kept %.0f%% of the CPUs busy just before the run: "+
		"the numbers are lower and noisier than this machine can do.", 100*m.Load)
}

// printTable writes the results as an aligned text table.
func printTable(w io.Writer, results []scenarioResult) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tmetric\tvalue\ttarget\tvs target\t")
	for _, r := range results {
		if r.Err != nil {
			fmt.Fprintf(tw, "%s\tFAILED: %s\t\t\t\t\n", r.Name, oneLine(r.Err.Error()))
			continue
		}
		for _, m := range r.Metrics {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, m.Name, m.value(), m.target(), m.ratio(), m.verdict())
		}
	}
	_ = tw.Flush()
}

// resultsFile is the Markdown the run writes: when, where and how it ran,
// the table, and each scenario's notes.
func resultsFile(m machine, command string, at time.Time, results []scenarioResult) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Benchmark results\n\n")
	fmt.Fprintf(&b, "Written by `%s` on %s. Numbers are reported, not asserted; "+
		"run `make bench` to measure your machine.\n\n", command, at.UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "| machine | |\n|---|---|\n")
	fmt.Fprintf(&b, "| CPUs (nproc) | %s |\n", m.cpus())
	if m.Memory != "" {
		fmt.Fprintf(&b, "| memory | %s |\n", m.Memory)
	}
	fmt.Fprintf(&b, "| OS | %s |\n| Go | %s |\n", m.OS, m.Go)
	if m.PostgreSQL != "" {
		fmt.Fprintf(&b, "| PostgreSQL | %s (same machine) |\n", m.PostgreSQL)
	}
	if m.Commit != "" {
		fmt.Fprintf(&b, "| commit | %s |\n", m.Commit)
	}
	if m.Load >= 0 {
		fmt.Fprintf(&b, "| load before the run | %.0f%% of the CPUs busy |\n", 100*m.Load)
	}
	if w := m.loadWarning(); w != "" {
		fmt.Fprintf(&b, "\n**Warning:** %s\n", w)
	}
	fmt.Fprintf(&b, "\n| scenario | metric | value | target | vs target | |\n|---|---|---:|---:|---:|---|\n")
	for _, r := range results {
		if r.Err != nil {
			fmt.Fprintf(&b, "| %s | failed: %s | | | | |\n", r.Name, mdEscape(oneLine(r.Err.Error())))
			continue
		}
		for _, mt := range r.Metrics {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", r.Name, mdEscape(mt.Name), mt.value(),
				mdEscape(mt.target()), mt.ratio(), mt.verdict())
		}
	}
	fmt.Fprintf(&b, "\nMB are 10^6 bytes. \"vs target\" is value / target.\n")
	for _, r := range results {
		fmt.Fprintf(&b, "\n## %s (`%s`, %s)\n\n", r.Title, r.Name, seconds(r.Duration))
		if r.Err != nil {
			fmt.Fprintf(&b, "Failed: %s\n", oneLine(r.Err.Error()))
			continue
		}
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	return b.Bytes()
}

// seconds formats a duration as seconds with one decimal, "82.8 s".
func seconds(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func mdEscape(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
