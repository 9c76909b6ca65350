package crm

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Standard Webhooks header names.
const (
	HeaderWebhookID        = "webhook-id"
	HeaderWebhookTimestamp = "webhook-timestamp"
	HeaderWebhookSignature = "webhook-signature"
)

// webhookSecretPrefix starts every Standard Webhooks secret.
const webhookSecretPrefix = "whsec_"

// minSecretBytes is the shortest decoded webhook secret accepted. Standard
// Webhooks recommends 24 to 64 random bytes; 16 still rules out typos and
// toy secrets without rejecting secrets issued by other systems.
const minSecretBytes = 16

// webhookTarget is a Standard Webhooks endpoint.
type webhookTarget struct {
	common
	url *url.URL
	// key is the HMAC key: the base64-decoded part of the secret after
	// whsec_.
	key            []byte
	rawSecret      string
	headers        map[string]string
	headerKeys     []string
	includeContact bool
}

// reservedHeaders are set by postcall and may not be overridden through the
// `headers` setting: the signature headers would break verification, the
// others would break the request.
var reservedHeaders = map[string]bool{
	"webhook-id": true, "webhook-timestamp": true, "webhook-signature": true,
	"content-type": true, "content-length": true, "host": true,
	"transfer-encoding": true, "connection": true, "user-agent": true,
}

// parseWebhook reads a webhook integration's settings:
//   - url (required): absolute http or https URL the event is POSTed to.
//   - secret (required): "whsec_" followed by standard base64 of at least 16
//     bytes (Standard Webhooks secrets are 24-64 random bytes). A raw secret
//     is refused: receivers' Standard Webhooks libraries base64-decode the
//     part after whsec_, so any other form would verify nowhere. Make one
//     with `echo whsec_$(openssl rand -base64 32)`.
//   - headers (optional): map of extra request headers, e.g. an
//     Authorization the receiver wants; values are treated as secrets.
//     webhook-*, Content-Type, User-Agent and hop-by-hop headers are
//     reserved.
//   - include_contact (optional, default false): also send phone_number and
//     contact_data, which are personal data, so they are opt-in.
func parseWebhook(s *settings, c common) (Target, error) {
	u, err := s.baseURL("url", "")
	if err != nil {
		return nil, err
	}
	secret, err := s.str("secret", true)
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(secret, webhookSecretPrefix) {
		return nil, s.errf("secret", "must start with whsec_ followed by base64 (Standard Webhooks)")
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, webhookSecretPrefix))
	if err != nil {
		return nil, s.errf("secret", "the part after whsec_ must be standard base64")
	}
	if len(key) < minSecretBytes {
		return nil, s.errf("secret", "must decode to at least %d bytes", minSecretBytes)
	}
	headers, keys, err := s.stringMap("headers")
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		if !validHeaderName(k) {
			return nil, s.errf("headers", "%q is not a valid header name", k)
		}
		if reservedHeaders[strings.ToLower(k)] {
			return nil, s.errf("headers", "%q is set by postcall", k)
		}
		if !validHeaderValue(headers[k]) {
			return nil, s.errf("headers."+k, "must not contain control characters")
		}
	}
	includeContact := false
	if v, ok := s.get("include_contact"); ok {
		b, isBool := v.(bool)
		if !isBool {
			return nil, s.errf("include_contact", "must be true or false")
		}
		includeContact = b
	}
	// The path/query of the URL is kept out of errors and String; treat
	// it as a secret too for scrubbing.
	return &webhookTarget{
		common: c, url: u, key: key, rawSecret: secret,
		headers: headers, headerKeys: keys, includeContact: includeContact,
	}, nil
}

func validHeaderName(k string) bool {
	if k == "" {
		return false
	}
	for _, r := range k {
		// RFC 9110 token characters.
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			strings.ContainsRune("!#$%&'*+-.^_`|~", r)) {
			return false
		}
	}
	return true
}

func validHeaderValue(v string) bool {
	for _, r := range v {
		if r < ' ' && r != '\t' || r == 0x7f {
			return false
		}
	}
	return true
}

// String names the webhook and its host, never its path (Zapier-style URLs
// are bearer tokens) nor its secret.
func (t *webhookTarget) String() string {
	return "webhook " + strconv.Quote(t.name) + " -> " + hostOf(t.url)
}

// GoString keeps %#v from printing the secret fields.
func (t *webhookTarget) GoString() string { return t.String() }

func (t *webhookTarget) secrets() []string {
	out := []string{t.rawSecret, strings.TrimPrefix(t.rawSecret, webhookSecretPrefix)}
	for _, k := range t.headerKeys {
		out = append(out, t.headers[k])
	}
	if p := t.url.EscapedPath(); len(p) > 1 {
		out = append(out, p)
	}
	if t.url.RawQuery != "" {
		out = append(out, t.url.RawQuery)
	}
	return out
}

// sign computes the Standard Webhooks signature header value:
// "v1," + base64(HMAC-SHA256(key, id + "." + timestamp + "." + body)).
func sign(key []byte, id, timestamp string, body []byte) string {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(id))
	h.Write([]byte{'.'})
	h.Write([]byte(timestamp))
	h.Write([]byte{'.'})
	h.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// deliver POSTs the signed call.analyzed event. webhook-id is the delivery
// id (stable across retries); webhook-timestamp is this attempt's time, as
// receivers reject stale timestamps.
func (t *webhookTarget) deliver(d *Deliverer, a *attemptCtx) Attempt {
	now := d.now()
	body, err := webhookBody(a.res, &t.common, t.includeContact, now)
	if err != nil {
		return permanent(err)
	}
	ts := strconv.FormatInt(now.Unix(), 10)
	h := make(http.Header, len(t.headerKeys)+3)
	for _, k := range t.headerKeys {
		h.Set(k, t.headers[k])
	}
	h.Set(HeaderWebhookID, a.deliveryID)
	h.Set(HeaderWebhookTimestamp, ts)
	h.Set(HeaderWebhookSignature, sign(t.key, a.deliveryID, ts, body))
	resp, err := d.do(a.ctx, apiRequest{what: "post webhook", method: http.MethodPost, url: t.url, header: h, body: body})
	if err != nil {
		return networkFailure(err)
	}
	if !resp.ok() {
		return d.httpFailure("post webhook", resp)
	}
	return delivered(resp, "")
}
