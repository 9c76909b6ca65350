package recording

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// Store signs and deletes recording objects in one bucket. It is safe for
// concurrent use.
type Store struct {
	client   *s3.Client
	presign  *s3.PresignClient
	bucket   string
	ttl      time.Duration
	now      func() time.Time
	attempts int
	backoff  func(n int) time.Duration
}

// New builds a Store from cfg. It validates cfg and loads the AWS
// configuration (region and, without static credentials, the credential
// chain), but sends no request: a missing bucket or bad credentials show up
// on first use, so the worker can start while the store is unreachable.
//
// A URLTTL outside [MinURLTTL, MaxURLTTL] is clamped; use ClampTTL on the
// configured value first to tell the operator, and Store.URLTTL to see the
// lifetime in use.
func New(ctx context.Context, cfg Config) (*Store, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	ttl, _ := ClampTTL(cfg.URLTTL)

	var opts []func(*awsconfig.LoadOptions) error
	if cfg.Region != "" {
		opts = append(opts, awsconfig.WithRegion(cfg.Region))
	}
	if cfg.AccessKeyID != "" {
		opts = append(opts, awsconfig.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, cfg.SessionToken)))
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		// LoadDefaultConfig's errors name files and profiles, not secrets.
		return nil, fmt.Errorf("recording store: load AWS config: %w", err)
	}
	if awsCfg.Region == "" {
		awsCfg.Region = DefaultRegion
	}

	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.ForcePathStyle
		// Set here rather than through LoadDefaultConfig: there it would
		// also carry the credential chain's STS/SSO calls, and the loader
		// refuses a plain *http.Client when AWS_CA_BUNDLE is set.
		if cfg.HTTPClient != nil {
			o.HTTPClient = cfg.HTTPClient
		}
		// Since 2025 the SDK adds CRC32 checksums to every upload and
		// validates them on download; MinIO versions, R2, Ceph and others
		// reject or mangle those. Only send/check them where S3 demands it
		// (DeleteObjects still gets its required checksum).
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	})

	return &Store{
		client:   client,
		presign:  s3.NewPresignClient(client),
		bucket:   cfg.Bucket,
		ttl:      ttl,
		now:      cfg.Now,
		attempts: cfg.DeleteAttempts,
		backoff:  cfg.RetryBackoff,
	}, nil
}

// Bucket returns the bucket the store works on.
func (s *Store) Bucket() string { return s.bucket }

// URLTTL returns the lifetime of the URLs Sign makes: Config.URLTTL after
// defaulting and clamping.
func (s *Store) URLTTL() time.Duration { return s.ttl }

// SignedURL is a presigned GET URL for one recording. Its JSON form is the
// call document's `recording` object: {"key", "url", "expires_at"}.
//
// The URL is a bearer credential. String, GoString and LogValue redact it,
// so printing or logging a SignedURL does not leak it; only the JSON form
// (the API response) carries it.
type SignedURL struct {
	// Key is the object key (the call's recording_key).
	Key string `json:"key"`
	// URL is the presigned GET URL.
	URL string `json:"url"`
	// ExpiresAt is when S3 stops accepting URL: the signing time (whole
	// seconds, as in X-Amz-Date) plus the TTL (X-Amz-Expires).
	ExpiresAt time.Time `json:"expires_at"`
}

const redacted = "[REDACTED]"

func (u SignedURL) redactedURL() string {
	if u.URL == "" {
		return ""
	}
	return redacted
}

// String describes u with its URL redacted. fmt uses it for %v, %+v and %s.
func (u SignedURL) String() string {
	return fmt.Sprintf("SignedURL{Key:%q URL:%s ExpiresAt:%s}",
		u.Key, u.redactedURL(), u.ExpiresAt.Format(time.RFC3339))
}

// GoString is String, so that %#v redacts the URL too.
func (u SignedURL) GoString() string { return u.String() }

// LogValue makes log/slog log u with its URL redacted.
func (u SignedURL) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("key", u.Key),
		slog.String("url", u.redactedURL()),
		slog.Time("expires_at", u.ExpiresAt),
	)
}

// Sign returns a presigned GET URL for key, valid for Store.URLTTL from now.
// It does no network I/O unless the credential chain needs to fetch
// credentials. Errors name the key, never the URL.
func (s *Store) Sign(ctx context.Context, key string) (SignedURL, error) {
	if key == "" {
		return SignedURL{}, errors.New("sign recording: empty key")
	}
	// The signature carries the signing time in whole seconds (X-Amz-Date);
	// choosing it here, rather than letting the SDK read its own clock, is
	// what makes ExpiresAt exactly the moment S3 starts refusing the URL.
	at := s.now().UTC().Truncate(time.Second)
	req, err := s.presign.PresignGetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(key),
	}, func(o *s3.PresignOptions) {
		o.Expires = s.ttl
		o.Presigner = fixedTimePresigner{next: o.Presigner, at: at}
	})
	if err != nil {
		return SignedURL{}, fmt.Errorf("sign recording %q: %w", key, err)
	}
	return SignedURL{Key: key, URL: req.URL, ExpiresAt: at.Add(s.ttl)}, nil
}

// fixedTimePresigner signs with a given signing time instead of the SDK's
// clock.
type fixedTimePresigner struct {
	next s3.HTTPPresignerV4
	at   time.Time
}

// PresignHTTP implements s3.HTTPPresignerV4.
func (p fixedTimePresigner) PresignHTTP(ctx context.Context, creds aws.Credentials, r *http.Request,
	payloadHash, service, region string, _ time.Time, optFns ...func(*v4.SignerOptions),
) (string, http.Header, error) {
	return p.next.PresignHTTP(ctx, creds, r, payloadHash, service, region, p.at, optFns...)
}

// Exists reports whether key is in the bucket, using HeadObject. Note that
// without s3:ListBucket permission S3 answers 403 rather than 404 for a
// missing key; that is returned as an error, not as false.
func (s *Store) Exists(ctx context.Context, key string) (bool, error) {
	if key == "" {
		return false, errors.New("check recording: empty key")
	}
	_, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(key),
	})
	if err == nil {
		return true, nil
	}
	if isNotFound(err) {
		return false, nil
	}
	return false, fmt.Errorf("check recording %q: %w", key, err)
}

// isNotFound reports whether err says the object does not exist. HEAD
// responses have no body, so the SDK reports a bare 404 as NotFound; some
// S3-compatible stores say NoSuchKey.
func isNotFound(err error) bool {
	var nf *types.NotFound
	if errors.As(err, &nf) {
		return true
	}
	var nsk *types.NoSuchKey
	if errors.As(err, &nsk) {
		return true
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "NotFound", "NoSuchKey":
			return true
		}
	}
	return false
}
