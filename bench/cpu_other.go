//go:build !linux

package main

// cpuCounters are the machine's and this process's CPU time counters.
type cpuCounters struct {
	busy, total, self, postgres int64
}

// readCPU is not implemented outside Linux.
func readCPU() (cpuCounters, bool) { return cpuCounters{}, false }
