package recording

import (
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/recording/s3test"
)

const testBucket = s3test.DefaultBucket

// bundle is one test's private S3 (s3test) and a Store pointed at it
// path-style.
type bundle struct {
	store *Store
	s3    *s3test.Server
}

// setup starts a fresh fake S3 with the bucket testBucket and returns a
// Store for it. mutate adjusts the Config before New.
func setup(t *testing.T, mutate ...func(*Config)) *bundle {
	t.Helper()
	srv := s3test.NewServer(t, s3test.Options{})
	cfg := Config{
		Bucket:          srv.Bucket,
		Endpoint:        srv.URL,
		Region:          "us-east-1",
		ForcePathStyle:  true,
		AccessKeyID:     srv.AccessKey,
		SecretAccessKey: srv.SecretKey,
		HTTPClient:      srv.Client(),
	}
	for _, m := range mutate {
		m(&cfg)
	}
	store, err := New(t.Context(), cfg)
	require.NoError(t, err)
	return &bundle{store: store, s3: srv}
}

// putSDK uploads an object through the Store's S3 client, so the SDK's
// request signing and checksum settings are exercised too.
func (b *bundle) putSDK(t *testing.T, key, body string) {
	t.Helper()
	_, err := b.store.client.PutObject(t.Context(), putInput(key, body))
	require.NoError(t, err, "put %s", key)
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
