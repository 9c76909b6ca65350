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

// DemoFound is what the demo model read for one field or checklist item
// (Value true when an item passed), and the turn and words it read it from.
type DemoFound struct {
	Value any
	Turn  int
	Quote string
}

// DemoRead runs the demo model's reading rules on req.
func DemoRead(req Request) (map[string]DemoFound, error) {
	_, values, _, err := demoRead(req)
	if err != nil {
		return nil, err
	}
	out := make(map[string]DemoFound, len(values))
	for k, f := range values {
		out[k] = DemoFound{Value: f.value, Turn: f.turn, Quote: f.quote}
	}
	return out, nil
}

// CallMessageTurns renders in's call message and reads its transcript back
// as the demo model does.
func CallMessageTurns(in Input) []Turn {
	return readCallMessage(callMessage(in)).Turns
}
