// Package s3test is the in-process S3 of postcall's tests: gofakes3 with
// SigV4 authentication behind an httptest server, one bucket, objects put
// and checked straight in the backend, per-key DeleteObjects failures
// reported the way S3 reports them, and a log of the DeleteObjects requests.
// Every test that needs a bucket uses it, so there is one fake to keep
// faithful to S3.
package s3test

import (
	"bytes"
	"cmp"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/rclone/gofakes3"
	"github.com/rclone/gofakes3/s3mem"
)

// Defaults of Options.
const (
	DefaultBucket    = "recordings"
	DefaultAccessKey = "AKIDPOSTCALLTEST"
	DefaultSecretKey = "postcall-test-secret"
)

// Options configure a Server; zero fields take the defaults.
type Options struct {
	// Bucket is the one bucket created. Default DefaultBucket.
	Bucket string
	// AccessKey and SecretKey are the only credentials the server accepts
	// (SigV4). Defaults DefaultAccessKey and DefaultSecretKey.
	AccessKey, SecretKey string
}

// Server is a running fake S3 with one bucket. It is closed when the test
// ends.
type Server struct {
	// URL is the endpoint (S3_ENDPOINT), path-style.
	URL                          string
	Bucket, AccessKey, SecretKey string

	srv    *httptest.Server
	mem    *s3mem.Backend
	faults *faultyBackend
	log    *requestLog
}

// NewServer starts a fake S3 for t.
func NewServer(t testing.TB, opts Options) *Server {
	t.Helper()
	s := &Server{
		Bucket: cmp.Or(opts.Bucket, DefaultBucket), AccessKey: cmp.Or(opts.AccessKey, DefaultAccessKey),
		SecretKey: cmp.Or(opts.SecretKey, DefaultSecretKey), mem: s3mem.New(), log: &requestLog{},
	}
	if err := s.mem.CreateBucket(context.Background(), s.Bucket); err != nil {
		t.Fatalf("s3test: create bucket %s: %v", s.Bucket, err)
	}
	s.faults = &faultyBackend{Backend: s.mem, faults: map[string]*fault{}}
	faker := gofakes3.New(s.faults, gofakes3.WithV4Auth(map[string]string{s.AccessKey: s.SecretKey}))
	s.srv = httptest.NewServer(s.log.wrap(faker.Server()))
	t.Cleanup(s.srv.Close)
	s.URL = s.srv.URL
	return s
}

// Client is an HTTP client for the server.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// Env is the configuration of a postcall process using this bucket
// (S3_BUCKET, S3_ENDPOINT, path style, the region and the credentials).
func (s *Server) Env() []string {
	return []string{
		"S3_BUCKET=" + s.Bucket, "S3_ENDPOINT=" + s.URL, "S3_FORCE_PATH_STYLE=1", "S3_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=" + s.AccessKey, "AWS_SECRET_ACCESS_KEY=" + s.SecretKey,
	}
}

// Put stores an object straight into the backend: fast, for many keys.
func (s *Server) Put(t testing.TB, key, body string) {
	t.Helper()
	_, err := s.mem.PutObject(context.Background(), s.Bucket, key, map[string]string{}, strings.NewReader(body), int64(len(body)))
	if err != nil {
		t.Fatalf("s3test: put %s: %v", key, err)
	}
}

// Delete removes an object straight from the backend, as if someone else
// had deleted it.
func (s *Server) Delete(t testing.TB, key string) {
	t.Helper()
	if _, err := s.mem.DeleteObject(context.Background(), s.Bucket, key); err != nil {
		t.Fatalf("s3test: delete %s: %v", key, err)
	}
}

// Exists asks the backend directly, bypassing the code under test.
func (s *Server) Exists(t testing.TB, key string) bool {
	t.Helper()
	_, err := s.mem.HeadObject(context.Background(), s.Bucket, key)
	if err == nil {
		return true
	}
	if !gofakes3.HasErrorCode(err, gofakes3.ErrNoSuchKey) {
		t.Fatalf("s3test: head %s: %v", key, err)
	}
	return false
}

// FailDeletes makes DeleteObjects report code for key instead of deleting
// it, times more times (negative: forever), inside a 200 response as S3
// does.
func (s *Server) FailDeletes(key string, code gofakes3.ErrorCode, times int) {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	s.faults.faults[key] = &fault{code: code, times: times}
}

// DeleteSizes returns the number of keys in each DeleteObjects request so
// far.
func (s *Server) DeleteSizes() []int {
	s.log.mu.Lock()
	defer s.log.mu.Unlock()
	return append([]int(nil), s.log.deleteSizes...)
}

// NotQuietDeletes counts DeleteObjects requests that asked for every
// deleted key to be listed in the response.
func (s *Server) NotQuietDeletes() int {
	s.log.mu.Lock()
	defer s.log.mu.Unlock()
	return s.log.notQuiet
}

// requestLog records the DeleteObjects requests reaching the server and
// how many keys each carried.
type requestLog struct {
	mu          sync.Mutex
	deleteSizes []int
	notQuiet    int // DeleteObjects requests without <Quiet>true</Quiet>
}

func (l *requestLog) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Query().Has("delete") {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			l.mu.Lock()
			l.deleteSizes = append(l.deleteSizes, bytes.Count(body, []byte("<Object>")))
			if !bytes.Contains(body, []byte("<Quiet>true</Quiet>")) {
				l.notQuiet++
			}
			l.mu.Unlock()
		}
		next.ServeHTTP(w, r)
	})
}

// fault makes DeleteMulti report code for a key instead of deleting it,
// times more times (negative: forever).
type fault struct {
	code  gofakes3.ErrorCode
	times int
}

// faultyBackend injects per-key DeleteObjects errors the way S3 reports
// them: inside a 200 response, as <Error><Key>..</Key><Code>..</Code>.
type faultyBackend struct {
	gofakes3.Backend
	mu     sync.Mutex
	faults map[string]*fault
}

func (f *faultyBackend) DeleteMulti(ctx context.Context, bucket string, objects ...string) (gofakes3.MultiDeleteResult, error) {
	var pass []string
	var injected []gofakes3.ErrorResult
	f.mu.Lock()
	for _, o := range objects {
		if ft, ok := f.faults[o]; ok && ft.times != 0 {
			ft.times--
			injected = append(injected, gofakes3.ErrorResult{Key: o, Code: ft.code, Message: "injected by test"})
			continue
		}
		pass = append(pass, o)
	}
	f.mu.Unlock()

	var res gofakes3.MultiDeleteResult
	if len(pass) > 0 {
		var err error
		if res, err = f.Backend.DeleteMulti(ctx, bucket, pass...); err != nil {
			return res, err
		}
	}
	res.Error = append(res.Error, injected...)
	return res, nil
}
