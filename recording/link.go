package recording

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/url"
	"strings"
)

// Links makes recording links for places that keep them forever, such as a
// CRM note. A presigned S3 URL dies within 7 days; a link is instead a URL of
// postcall's own (GET {BaseURL}/r/{call id}?sig=...) that, when followed,
// checks its HMAC signature and redirects to a freshly presigned URL. The
// link itself never expires; it stops working when the call is purged or
// deleted (the recording is gone) or when the secret is rotated.
type Links struct {
	// BaseURL is where postcall's HTTP server is reachable by the people
	// who click the links (POSTCALL_PUBLIC_URL). Required.
	BaseURL string
	// Secret keys the HMAC (POSTCALL_LINK_SECRET), at least 32 bytes.
	// Required.
	Secret []byte
}

// MinLinkSecret is the shortest accepted link secret.
const MinLinkSecret = 32

// NewLinks validates and returns a link maker.
func NewLinks(baseURL, secret string) (*Links, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("POSTCALL_PUBLIC_URL: must be an absolute http(s) URL")
	}
	if len(secret) < MinLinkSecret {
		return nil, errors.New("POSTCALL_LINK_SECRET: must be at least 32 characters")
	}
	return &Links{BaseURL: strings.TrimRight(baseURL, "/"), Secret: []byte(secret)}, nil
}

// Link returns the permanent link to the recording of the call with
// postcall id callID.
func (l *Links) Link(callID string) string {
	return l.BaseURL + "/r/" + url.PathEscape(callID) + "?sig=" + l.sign(callID)
}

// Valid reports whether sig is the signature of callID.
func (l *Links) Valid(callID, sig string) bool {
	return hmac.Equal([]byte(sig), []byte(l.sign(callID)))
}

func (l *Links) sign(callID string) string {
	mac := hmac.New(sha256.New, l.Secret)
	mac.Write([]byte("postcall-recording-link:" + callID))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}
