// Package recording signs and deletes call recordings kept in an S3 or
// S3-compatible bucket (AWS S3, MinIO, Cloudflare R2, ...).
//
// A call's recording_key names an object in one bucket. The call document
// exposes the recording as a freshly presigned GET URL (Store.Sign), and the
// purge removes the objects of purged and hard-deleted calls (Store.Delete).
//
// Signed URLs are bearer credentials: anyone holding one can download the
// recording until it expires. They are therefore never put into error
// messages, and SignedURL redacts its URL when printed or logged.
package recording

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

const (
	// DefaultURLTTL is the lifetime of a signed URL when Config.URLTTL is zero.
	DefaultURLTTL = time.Hour
	// MaxURLTTL is the longest lifetime SigV4 allows for a presigned URL;
	// S3 refuses URLs whose X-Amz-Expires is larger.
	MaxURLTTL = 7 * 24 * time.Hour
	// MinURLTTL is the shortest lifetime a signed URL gets. X-Amz-Expires is
	// counted in whole seconds, and S3 refuses zero.
	MinURLTTL = time.Second

	// DefaultRegion is the signing region used when neither Config.Region nor
	// the default AWS configuration chain names one. S3-compatible stores
	// (MinIO, R2 with "auto") generally accept it.
	DefaultRegion = "us-east-1"

	// DefaultDeleteAttempts is how often Delete tries a key that fails with a
	// per-key error, when Config.DeleteAttempts is zero.
	DefaultDeleteAttempts = 4

	// maxDeleteBatch is the most keys S3's DeleteObjects accepts per request.
	maxDeleteBatch = 1000
)

// Config configures a Store. The config package fills it from the
// environment; field comments name the variable each field comes from.
// The zero value of every optional field selects its default.
type Config struct {
	// Bucket is the bucket holding the recordings (S3_BUCKET). Required.
	Bucket string

	// Endpoint is a custom S3 endpoint URL (S3_ENDPOINT), e.g.
	// "http://127.0.0.1:9000" for MinIO or
	// "https://<account>.r2.cloudflarestorage.com" for R2. It must be an
	// absolute http or https URL. Default: empty, meaning AWS S3's regional
	// endpoint (or AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL via the SDK).
	Endpoint string

	// Region is the signing region (S3_REGION). Default: the region of the
	// default AWS chain (AWS_REGION, AWS_DEFAULT_REGION, shared config),
	// else DefaultRegion ("us-east-1").
	Region string

	// ForcePathStyle addresses objects as endpoint/bucket/key instead of
	// bucket.endpoint/key (S3_FORCE_PATH_STYLE). Most self-hosted
	// S3-compatible stores need it. Default: false (virtual-hosted style).
	ForcePathStyle bool

	// URLTTL is the lifetime of a signed recording URL
	// (POSTCALL_RECORDING_URL_TTL). Default: DefaultURLTTL (1h). Values
	// outside [MinURLTTL, MaxURLTTL] (1s .. 7 days) are clamped, see ClampTTL;
	// negative values are invalid.
	URLTTL time.Duration

	// AccessKeyID, SecretAccessKey and SessionToken are optional static
	// credentials. Default: empty, meaning the default AWS credential chain
	// (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN, shared
	// files, SSO, web identity, container and instance roles). When
	// AccessKeyID is set, SecretAccessKey is required too.
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string

	// HTTPClient sends the S3 requests. Default: nil, meaning the AWS SDK's
	// default client (with its timeouts, connection pooling and
	// AWS_CA_BUNDLE). The credential chain keeps the SDK's client, and a
	// custom client's TLS settings are its own: AWS_CA_BUNDLE is not added.
	HTTPClient *http.Client

	// Now is the clock used as the signing time of presigned URLs, and so
	// decides SignedURL.ExpiresAt. Default: time.Now. Tests set it to sign
	// URLs in the past without sleeping.
	Now func() time.Time

	// DeleteAttempts is how many times Delete tries a key whose deletion
	// fails with a per-key error (counting the first try). Default:
	// DefaultDeleteAttempts (4). Whole-request failures are retried by the
	// SDK's own retryer instead, see Store.Delete.
	DeleteAttempts int

	// RetryBackoff returns the wait before retry number n (1 for the first
	// retry) of Delete's per-key failures. Default: 200ms doubled per retry,
	// at most 2s. Tests return 0.
	RetryBackoff func(n int) time.Duration
}

// String describes the configuration without its secrets, so a Config that
// ends up in a log or error message does not leak credentials.
func (c Config) String() string {
	creds := "default chain"
	if c.AccessKeyID != "" {
		creds = "static"
	}
	return fmt.Sprintf("recording.Config{Bucket:%q Endpoint:%q Region:%q ForcePathStyle:%t URLTTL:%s Credentials:%s}",
		c.Bucket, c.Endpoint, c.Region, c.ForcePathStyle, c.URLTTL, creds)
}

// GoString is String, so that %#v does not print the secrets either.
func (c Config) GoString() string { return c.String() }

// withDefaults returns c with every unset optional field set to its default.
// It does not clamp URLTTL: validate must still see a negative value.
func (c Config) withDefaults() Config {
	if c.URLTTL == 0 {
		c.URLTTL = DefaultURLTTL
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.DeleteAttempts == 0 {
		c.DeleteAttempts = DefaultDeleteAttempts
	}
	if c.RetryBackoff == nil {
		c.RetryBackoff = defaultBackoff
	}
	return c
}

// defaultBackoff waits 200ms, 400ms, 800ms, ... up to 2s: per-key
// InternalError/SlowDown answers from S3 usually clear within a second.
func defaultBackoff(n int) time.Duration {
	d := 200 * time.Millisecond
	for i := 1; i < n && d < 2*time.Second; i++ {
		d *= 2
	}
	return min(d, 2*time.Second)
}

// validate reports every invalid field at once, each named by its
// environment variable and field, so a misconfigured deployment is fixed in
// one go.
func (c Config) validate() error {
	var errs []error
	if c.Bucket == "" {
		errs = append(errs, errors.New("S3_BUCKET (Bucket) is required"))
	}
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		switch {
		case err != nil:
			// url.Parse's error quotes the input, which is not secret.
			errs = append(errs, fmt.Errorf("S3_ENDPOINT (Endpoint): %w", err))
		case u.Scheme != "http" && u.Scheme != "https":
			errs = append(errs, fmt.Errorf("S3_ENDPOINT (Endpoint) %q: want an http:// or https:// URL", c.Endpoint))
		case u.Host == "":
			errs = append(errs, fmt.Errorf("S3_ENDPOINT (Endpoint) %q: missing host", c.Endpoint))
		case u.User != nil:
			// Credentials belong in AWS_*; and we would echo them in errors.
			errs = append(errs, errors.New("S3_ENDPOINT (Endpoint): must not contain user info; use AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"))
		}
	}
	if c.URLTTL < 0 {
		errs = append(errs, fmt.Errorf("POSTCALL_RECORDING_URL_TTL (URLTTL) %s: must not be negative", c.URLTTL))
	}
	if c.AccessKeyID != "" && c.SecretAccessKey == "" {
		errs = append(errs, errors.New("AWS_SECRET_ACCESS_KEY (SecretAccessKey) is required when AWS_ACCESS_KEY_ID (AccessKeyID) is set"))
	}
	if c.AccessKeyID == "" && (c.SecretAccessKey != "" || c.SessionToken != "") {
		errs = append(errs, errors.New("AWS_ACCESS_KEY_ID (AccessKeyID) is required when AWS_SECRET_ACCESS_KEY or AWS_SESSION_TOKEN is set"))
	}
	if c.DeleteAttempts < 0 {
		errs = append(errs, fmt.Errorf("DeleteAttempts %d: must not be negative", c.DeleteAttempts))
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("recording store config: %w", errors.Join(errs...))
}

// ClampTTL returns d limited to [MinURLTTL, MaxURLTTL] (1s .. 7 days, the
// SigV4 presign range) and truncated to whole seconds, because
// X-Amz-Expires is counted in seconds. clamped reports whether d was out of
// range, so the caller can warn that the configured lifetime is not used;
// dropping a sub-second remainder does not count as clamping.
func ClampTTL(d time.Duration) (ttl time.Duration, clamped bool) {
	switch {
	case d > MaxURLTTL:
		return MaxURLTTL, true
	case d < MinURLTTL:
		return MinURLTTL, true
	default:
		return d.Truncate(time.Second), false
	}
}
