package main

import "testing"

// BenchmarkRedactTenMinutes is the redact scenario's measurement as a Go
// benchmark (target: under 1 ms per op).
func BenchmarkRedactTenMinutes(b *testing.B) { benchmarkRedact(b, tenMinuteTranscript()) }

// BenchmarkEncodeTenMinutes is its baseline.
func BenchmarkEncodeTenMinutes(b *testing.B) { benchmarkEncode(b, tenMinuteTranscript()) }
