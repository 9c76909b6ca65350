package recording

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/postcall/postcall/internal/wait"
)

// DeleteResult is the outcome of Store.Delete.
type DeleteResult struct {
	// Deleted lists the keys that are gone from the bucket, including keys
	// that did not exist. Each key appears once.
	Deleted []string
	// Failed maps each key that could not be deleted to why: a *KeyError
	// for a per-key error S3 kept reporting, otherwise the request error.
	// Nil when every key was deleted.
	Failed map[string]error
	// Requests is the number of DeleteObjects calls made (the SDK's own
	// retries of one call are not counted).
	Requests int
}

// KeyError is a per-key error from a DeleteObjects response.
type KeyError struct {
	// Key is the object key S3 could not delete.
	Key string
	// Code is S3's error code, e.g. "AccessDenied" or "InternalError".
	Code string
	// Message is S3's error message; it may be empty.
	Message string
}

// Error implements error.
func (e *KeyError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("delete recording %q: %s", e.Key, e.Code)
	}
	return fmt.Sprintf("delete recording %q: %s: %s", e.Key, e.Code, e.Message)
}

// DeleteError is returned by Store.Delete when some keys could not be
// deleted. Its message names them; errors.Is and errors.As see every
// per-key error (e.g. context.Canceled, *KeyError).
type DeleteError struct {
	// Failed is DeleteResult.Failed.
	Failed map[string]error
	// Total is the number of distinct keys Delete was asked to delete.
	Total int
}

// maxNamedKeys bounds the keys named in DeleteError's message, so a failing
// bucket does not produce a megabyte-long log line.
const maxNamedKeys = 10

// Error implements error.
func (e *DeleteError) Error() string {
	keys := e.keys()
	var b strings.Builder
	fmt.Fprintf(&b, "delete recordings: %d of %d keys failed:", len(keys), e.Total)
	for i, k := range keys {
		if i == maxNamedKeys {
			fmt.Fprintf(&b, " and %d more", len(keys)-maxNamedKeys)
			break
		}
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, " %q (%s)", k, failureReason(e.Failed[k]))
	}
	return b.String()
}

// Unwrap returns the per-key errors in key order.
func (e *DeleteError) Unwrap() []error {
	keys := e.keys()
	errs := make([]error, 0, len(keys))
	for _, k := range keys {
		errs = append(errs, e.Failed[k])
	}
	return errs
}

func (e *DeleteError) keys() []string {
	keys := make([]string, 0, len(e.Failed))
	for k := range e.Failed {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// failureReason is a short reason for one key, for DeleteError's message.
func failureReason(err error) string {
	var ke *KeyError
	if errors.As(err, &ke) {
		return ke.Code
	}
	if err == nil {
		return "unknown"
	}
	return err.Error()
}

// Delete removes keys from the bucket with DeleteObjects, at most 1000 keys
// per request. Duplicate and empty keys are dropped; no keys means no
// request.
//
// A key S3 reports as NoSuchKey counts as deleted: the goal is that the
// recording is gone. Other per-key errors (InternalError, SlowDown, ...) are
// retried, up to Config.DeleteAttempts tries per key with
// Config.RetryBackoff between rounds. A failed request (network, 5xx,
// NoSuchBucket, AccessDenied for the whole call) is not retried here: the
// SDK's retryer has already retried it if it was transient, and retrying
// again would multiply attempts.
//
// Delete always returns the result; when some keys still failed, the
// error is a *DeleteError naming them. If ctx ends, the keys not yet
// deleted fail with ctx's error.
func (s *Store) Delete(ctx context.Context, keys []string) (DeleteResult, error) {
	var res DeleteResult
	pending := dedup(keys)
	total := len(pending)
	if total == 0 {
		return res, nil
	}

	fail := func(key string, err error) {
		if res.Failed == nil {
			res.Failed = make(map[string]error)
		}
		res.Failed[key] = err
	}

	for attempt := 1; len(pending) > 0; attempt++ {
		if attempt > 1 {
			if err := wait.Sleep(ctx, s.backoff(attempt-1)); err != nil {
				for _, k := range pending {
					fail(k, fmt.Errorf("delete recording %q: %w", k, err))
				}
				break
			}
		}

		var retry []string
		lastErr := make(map[string]*KeyError)
		for batch := range slices.Chunk(pending, maxDeleteBatch) {
			if err := ctx.Err(); err != nil {
				for _, k := range batch {
					fail(k, fmt.Errorf("delete recording %q: %w", k, err))
				}
				continue
			}
			keyErrs, err := s.deleteBatch(ctx, batch)
			res.Requests++
			if err != nil {
				for _, k := range batch {
					fail(k, fmt.Errorf("delete recording %q: %w", k, err))
				}
				continue
			}
			for _, k := range batch {
				ke, ok := keyErrs[k]
				switch {
				case !ok, ke.Code == "NoSuchKey":
					res.Deleted = append(res.Deleted, k)
				default:
					retry = append(retry, k)
					lastErr[k] = ke
				}
			}
		}

		if attempt >= s.attempts {
			for _, k := range retry {
				fail(k, lastErr[k])
			}
			break
		}
		pending = retry
	}

	if len(res.Failed) > 0 {
		return res, &DeleteError{Failed: res.Failed, Total: total}
	}
	return res, nil
}

// deleteBatch sends one DeleteObjects request for keys (at most 1000) and
// returns its per-key errors by key.
func (s *Store) deleteBatch(ctx context.Context, keys []string) (map[string]*KeyError, error) {
	objects := make([]types.ObjectIdentifier, len(keys))
	for i, k := range keys {
		objects[i] = types.ObjectIdentifier{Key: aws.String(k)}
	}
	out, err := s.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
		Bucket: aws.String(s.bucket),
		// Quiet: the response lists only failures, not 1000 successes.
		Delete: &types.Delete{Objects: objects, Quiet: aws.Bool(true)},
	})
	if err != nil {
		return nil, err
	}
	errs := make(map[string]*KeyError, len(out.Errors))
	for _, e := range out.Errors {
		k := aws.ToString(e.Key)
		errs[k] = &KeyError{Key: k, Code: aws.ToString(e.Code), Message: aws.ToString(e.Message)}
	}
	return errs, nil
}

// dedup returns keys without empty strings and repeats, in first-seen
// order. Deleting a key twice in one DeleteObjects request is harmless on
// S3, but it would be counted twice in the result.
func dedup(keys []string) []string {
	seen := make(map[string]struct{}, len(keys))
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		if k == "" {
			continue
		}
		if _, ok := seen[k]; ok {
			continue
		}
		seen[k] = struct{}{}
		out = append(out, k)
	}
	return out
}
