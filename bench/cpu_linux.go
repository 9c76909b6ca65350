package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// cpuCounters are CPU time counters in clock ticks (USER_HZ), from /proc:
// the machine's, this process's and PostgreSQL's (every process named
// postgres, whoever it serves, including the backends that exited: their
// time is in the postmaster's children's time).
type cpuCounters struct {
	busy, total, self, postgres int64
}

// readCPU reads the counters; ok is false when /proc is not readable.
func readCPU() (c cpuCounters, ok bool) {
	stat, err := os.ReadFile("/proc/stat")
	if err != nil {
		return c, false
	}
	line, _, _ := bytes.Cut(stat, []byte("\n"))
	fields := strings.Fields(string(line))
	if len(fields) < 8 || fields[0] != "cpu" {
		return c, false
	}
	for i, f := range fields[1:] {
		v, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return c, false
		}
		if i >= 8 { // guest time is already counted in user time
			break
		}
		c.total += v
		if i != 3 && i != 4 { // idle, iowait
			c.busy += v
		}
	}
	if c.self, _, _, ok = processCPU("/proc/self/stat"); !ok {
		return c, false
	}
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return c, false
	}
	for _, d := range dirs {
		if d.Name()[0] < '0' || d.Name()[0] > '9' {
			continue
		}
		if own, children, name, ok := processCPU("/proc/" + d.Name() + "/stat"); ok && name == "postgres" {
			c.postgres += own + children
		}
	}
	return c, true
}

// processCPU reads a /proc/PID/stat file: the process's user and system
// time, that of its children it waited for, and its command name.
func processCPU(path string) (own, children int64, name string, ok bool) {
	stat, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, "", false
	}
	// The command name is in parentheses and may hold spaces; utime,
	// stime, cutime and cstime are the 12th to 15th fields after it.
	open, closing := bytes.IndexByte(stat, '('), bytes.LastIndex(stat, []byte(") "))
	if open < 0 || closing < open {
		return 0, 0, "", false
	}
	f := strings.Fields(string(stat[closing+2:]))
	if len(f) < 15 {
		return 0, 0, "", false
	}
	var utime, stime, cutime, cstime int64
	if _, err := fmt.Sscan(f[11]+" "+f[12]+" "+f[13]+" "+f[14], &utime, &stime, &cutime, &cstime); err != nil {
		return 0, 0, "", false
	}
	return utime + stime, cutime + cstime, string(stat[open+1 : closing]), true
}
