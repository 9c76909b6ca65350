package recording

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/rclone/gofakes3"
	"github.com/rclone/gofakes3/s3mem"
	"github.com/stretchr/testify/require"
)

const (
	testBucket    = "recordings"
	testAccessKey = "AKIDPOSTCALLTEST"
	testSecretKey = "postcall-test-secret"
)

// bundle is one test's private S3: gofakes3 with SigV4 auth behind an
// httptest server, and a Store pointed at it path-style.
type bundle struct {
	store  *Store
	srv    *httptest.Server
	mem    *s3mem.Backend
	faults *faultyBackend
	log    *requestLog
}

// setup starts a fresh fake S3 with the bucket testBucket and returns a
// Store for it. mutate adjusts the Config before New.
func setup(t *testing.T, mutate ...func(*Config)) *bundle {
	t.Helper()
	mem := s3mem.New()
	require.NoError(t, mem.CreateBucket(context.Background(), testBucket))
	faults := &faultyBackend{Backend: mem, faults: map[string]*fault{}}
	faker := gofakes3.New(faults, gofakes3.WithV4Auth(map[string]string{testAccessKey: testSecretKey}))
	log := &requestLog{}
	srv := httptest.NewServer(log.wrap(faker.Server()))
	t.Cleanup(srv.Close)

	cfg := Config{
		Bucket:          testBucket,
		Endpoint:        srv.URL,
		Region:          "us-east-1",
		ForcePathStyle:  true,
		AccessKeyID:     testAccessKey,
		SecretAccessKey: testSecretKey,
		HTTPClient:      srv.Client(),
	}
	for _, m := range mutate {
		m(&cfg)
	}
	store, err := New(t.Context(), cfg)
	require.NoError(t, err)
	return &bundle{store: store, srv: srv, mem: mem, faults: faults, log: log}
}

// putSDK uploads an object through the Store's S3 client, so the SDK's
// request signing and checksum settings are exercised too.
func (b *bundle) putSDK(t *testing.T, key, body string) {
	t.Helper()
	_, err := b.store.client.PutObject(t.Context(), putInput(key, body))
	require.NoError(t, err, "put %s", key)
}

// putMem stores an object straight into the backend: fast, for many keys.
func (b *bundle) putMem(t *testing.T, key, body string) {
	t.Helper()
	_, err := b.mem.PutObject(context.Background(), testBucket, key, map[string]string{}, strings.NewReader(body), int64(len(body)))
	require.NoError(t, err, "put %s", key)
}

// exists asks the backend directly, bypassing the code under test.
func (b *bundle) exists(t *testing.T, key string) bool {
	t.Helper()
	_, err := b.mem.HeadObject(context.Background(), testBucket, key)
	if err == nil {
		return true
	}
	require.True(t, gofakes3.HasErrorCode(err, gofakes3.ErrNoSuchKey), "head %s: %v", key, err)
	return false
}

// get fetches url with a plain http.Get, as a browser or the platform would.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

// requestLog records the DeleteObjects requests reaching the fake S3 and
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

// deletes returns the number of keys in each DeleteObjects request so far.
func (l *requestLog) deletes() []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]int(nil), l.deleteSizes...)
}

// notQuietDeletes counts DeleteObjects requests that asked for every
// deleted key to be listed in the response.
func (l *requestLog) notQuietDeletes() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.notQuiet
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

func (f *faultyBackend) inject(key string, code gofakes3.ErrorCode, times int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults[key] = &fault{code: code, times: times}
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
