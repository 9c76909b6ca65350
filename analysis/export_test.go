package analysis

import "errors"

// What the package's tests ask of results and errors, beyond what
// production code needs.

// IsPermanent reports whether retrying the same request cannot help: a
// non-transient provider error (bad request, authentication, insufficient
// quota), a request longer than the context window, or output that stayed
// invalid after the repair request. Context cancellation is neither
// permanent nor transient.
func IsPermanent(err error) bool {
	var ae *APIError
	if errors.As(err, &ae) {
		return !ae.Transient
	}
	var ie *InvalidOutputError
	return errors.Is(err, ErrContextTooLong) || errors.As(err, &ie)
}

// TotalUsage sums the usage of requests.
func TotalUsage(requests []RequestRecord) Usage {
	var u Usage
	for _, r := range requests {
		u = u.Add(r.Usage)
	}
	return u
}
