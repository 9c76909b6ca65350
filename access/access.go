// Package access is who may do what: named tokens with a role (admin or
// viewer), POSTCALL_API_TOKEN as an admin token, and the console's browser
// sessions. The HTTP API and the console ask it for a Principal and check
// its role; the CLI manages tokens through it. Tokens and session ids are
// 256 random bits and only their SHA-256 is stored.
package access

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/postcall/postcall/store"
)

// Role is what a token may do.
type Role string

// The roles.
const (
	// RoleAdmin may do everything.
	RoleAdmin Role = "admin"
	// RoleViewer (seed 001's calls-only user) reads calls and nothing
	// more: no writes, no /metrics, no River UI, and no token counts or
	// cost in call documents.
	RoleViewer Role = "viewer"
)

// ParseRole reads "admin" or "viewer".
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case RoleAdmin, RoleViewer:
		return r, nil
	}
	return "", fmt.Errorf("role %q: want admin or viewer", s)
}

// Principal is who a request comes from.
type Principal struct {
	// Name is the token's name; "POSTCALL_API_TOKEN" for that token.
	Name string
	Role Role
}

// Admin reports whether p may change things.
func (p Principal) Admin() bool { return p.Role == RoleAdmin }

// APITokenName names POSTCALL_API_TOKEN's principal.
const APITokenName = "POSTCALL_API_TOKEN"

// DefaultSessionTTL is how long a console session lasts.
const DefaultSessionTTL = 12 * time.Hour

// ErrUnauthorized is returned for a token or session that is unknown,
// revoked or expired.
var ErrUnauthorized = errors.New("unknown, revoked or expired credentials")

// DB is a pool: it runs statements and starts transactions.
type DB interface {
	store.DBTX
	Begin(ctx context.Context) (pgx.Tx, error)
}

// Service manages tokens and sessions.
type Service struct {
	// DB is the database. Required.
	DB DB
	// APIToken is POSTCALL_API_TOKEN, an admin token. Default "": none.
	APIToken string
	// SessionTTL is how long a console session lasts. Default
	// DefaultSessionTTL.
	SessionTTL time.Duration
	// Now is the clock (tests). Default time.Now.
	Now func() time.Time
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// tokenPrefix marks postcall tokens, so that secret scanners can find a
// leaked one.
const tokenPrefix = "pct_"

var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// CreateToken stores a new token and returns its secret, which is not
// stored and cannot be shown again.
func (s *Service) CreateToken(ctx context.Context, name string, role Role) (string, error) {
	var problems []string
	if !namePattern.MatchString(name) {
		problems = append(problems, fmt.Sprintf("name %q: want 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", name))
	}
	if name == APITokenName {
		problems = append(problems, fmt.Sprintf("name %q is reserved", name))
	}
	if _, err := ParseRole(string(role)); err != nil {
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		return "", errors.New(strings.Join(problems, "; "))
	}
	secret := tokenPrefix + randomString()
	if err := store.InsertAccessToken(ctx, s.DB, name, string(role), hash(secret), s.now()); err != nil {
		return "", err
	}
	return secret, nil
}

// Tokens lists every token (never a secret).
func (s *Service) Tokens(ctx context.Context) ([]store.AccessToken, error) {
	return store.AccessTokens(ctx, s.DB)
}

// RevokeToken ends the named token and every console session signed in
// with it, returning how many sessions ended.
func (s *Service) RevokeToken(ctx context.Context, name string) (int64, error) {
	var n int64
	err := pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		var err error
		n, err = store.RevokeAccessToken(ctx, tx, name, s.now())
		return err
	})
	return n, err
}

// Authenticate returns the principal of a bearer token.
func (s *Service) Authenticate(ctx context.Context, secret string) (Principal, error) {
	if secret == "" {
		return Principal{}, ErrUnauthorized
	}
	if s.isAPIToken(secret) {
		return Principal{Name: APITokenName, Role: RoleAdmin}, nil
	}
	t, err := store.ActiveAccessToken(ctx, s.DB, hash(secret), s.now())
	if errors.Is(err, store.ErrNotFound) {
		return Principal{}, ErrUnauthorized
	}
	if err != nil {
		return Principal{}, err
	}
	return Principal{Name: t.Name, Role: Role(t.Role)}, nil
}

// isAPIToken compares in constant time, on hashes so that the length does
// not leak either.
func (s *Service) isAPIToken(secret string) bool {
	if s.APIToken == "" {
		return false
	}
	got, want := sha256.Sum256([]byte(secret)), sha256.Sum256([]byte(s.APIToken))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

// Session is a signed-in browser.
type Session struct {
	// ID is the cookie's value; only its hash is stored.
	ID string
	// CSRF is the token every state-changing form of the session carries.
	CSRF      string
	Principal Principal
	ExpiresAt time.Time
}

// SignIn checks a token and starts a console session for it.
func (s *Service) SignIn(ctx context.Context, secret string) (*Session, error) {
	p, err := s.Authenticate(ctx, secret)
	if err != nil {
		return nil, err
	}
	ttl := s.SessionTTL
	if ttl <= 0 {
		ttl = DefaultSessionTTL
	}
	now := s.now()
	sess := &Session{ID: randomString(), CSRF: randomString(), Principal: p, ExpiresAt: now.Add(ttl)}
	row := store.ConsoleSession{Role: string(p.Role), CSRF: sess.CSRF, ExpiresAt: sess.ExpiresAt}
	if p.Name == APITokenName {
		row.APITokenHash = hash(secret)
	} else {
		t, err := store.ActiveAccessToken(ctx, s.DB, hash(secret), now)
		if err != nil {
			return nil, err
		}
		row.TokenID = &t.ID
	}
	if err := store.InsertConsoleSession(ctx, s.DB, hash(sess.ID), row, now); err != nil {
		return nil, err
	}
	return sess, nil
}

// Session returns the live session with this cookie value. A session of
// POSTCALL_API_TOKEN ends when the variable changes; one of a named token
// when the token is revoked.
func (s *Service) Session(ctx context.Context, id string) (*Session, error) {
	if id == "" {
		return nil, ErrUnauthorized
	}
	row, err := store.GetConsoleSession(ctx, s.DB, hash(id), s.now())
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrUnauthorized
	}
	if err != nil {
		return nil, err
	}
	p := Principal{Name: row.TokenName, Role: Role(row.Role)}
	if row.TokenID == nil {
		want := hash(s.APIToken)
		if s.APIToken == "" || subtle.ConstantTimeCompare(row.APITokenHash, want) != 1 {
			return nil, ErrUnauthorized
		}
		p.Name = APITokenName
	}
	return &Session{ID: id, CSRF: row.CSRF, Principal: p, ExpiresAt: row.ExpiresAt}, nil
}

// SignOut ends a session.
func (s *Service) SignOut(ctx context.Context, id string) error {
	return store.DeleteConsoleSession(ctx, s.DB, hash(id))
}

// ValidCSRF reports whether a form's token is the session's.
func (sess *Session) ValidCSRF(token string) bool {
	return token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(sess.CSRF)) == 1
}

func hash(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// randomString is 256 random bits, URL-safe.
func randomString() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}
