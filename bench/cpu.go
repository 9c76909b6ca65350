package main

import "fmt"

// cpuMeter measures the machine's CPU use over an interval (Linux only).
type cpuMeter struct {
	start cpuCounters
	ok    bool
}

func startCPU() cpuMeter {
	c, ok := readCPU()
	return cpuMeter{start: c, ok: ok}
}

// cpuUsage is CPU use over an interval, as fractions of all the machine's
// CPUs.
type cpuUsage struct {
	// Busy is the machine's use, Self this process's, Postgres
	// PostgreSQL's (all its processes, whoever they serve).
	Busy, Self, Postgres float64
}

// usage returns the use since start; ok is false where it cannot be read.
func (m cpuMeter) usage() (u cpuUsage, ok bool) {
	end, ok := readCPU()
	if !m.ok || !ok || end.total <= m.start.total {
		return u, false
	}
	total := float64(end.total - m.start.total)
	return cpuUsage{
		Busy:     float64(end.busy-m.start.busy) / total,
		Self:     float64(end.self-m.start.self) / total,
		Postgres: float64(end.postgres-m.start.postgres) / total,
	}, true
}

// describe says how busy the CPUs were and who used them; others names
// the processes besides this one and PostgreSQL.
func (m cpuMeter) describe(others string) string {
	u, ok := m.usage()
	if !ok {
		return ""
	}
	return fmt.Sprintf(" CPU meanwhile: %.0f%% of the machine's CPUs busy: %.0f%% in the benchmark process, "+
		"%.0f%% in PostgreSQL, %.0f%% in %s.", 100*u.Busy, 100*u.Self, 100*u.Postgres, 100*max(u.Busy-u.Self-u.Postgres, 0), others)
}
