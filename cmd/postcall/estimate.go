package main

import "fmt"

// usd formats a cost in US dollars; nil is unpriced (no price for a model
// or tier), never $0.
func usd(v *float64) string {
	if v == nil {
		return "unpriced"
	}
	return dollars(*v)
}

// dollars shows small amounts with enough digits to compare: a call costs
// fractions of a cent.
func dollars(v float64) string {
	if v >= 100 {
		return fmt.Sprintf("$%.2f", v)
	}
	return fmt.Sprintf("$%.6f", v)
}
