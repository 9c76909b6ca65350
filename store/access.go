package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// AccessToken is a named token of the HTTP API and the console, without
// its secret (only its hash is stored).
type AccessToken struct {
	ID         int64
	Name       string
	Role       string
	CreatedAt  time.Time
	LastUsedAt *time.Time
	RevokedAt  *time.Time
}

// ErrDuplicate is returned when a unique name is taken.
var ErrDuplicate = errors.New("already exists")

// InsertAccessToken stores a new token's name, role and hash; an error
// wrapping ErrDuplicate when the name is taken (revoked names stay taken, so
// that the audit of who used a name stays unambiguous).
func InsertAccessToken(ctx context.Context, db DBTX, name, role string, hash []byte, now time.Time) error {
	_, err := db.Exec(ctx, `INSERT INTO access_tokens (name, role, hash, created_at) VALUES ($1, $2, $3, $4)`,
		name, role, hash, now)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return fmt.Errorf("token %q: %w", name, ErrDuplicate)
	}
	if err != nil {
		return fmt.Errorf("store token %q: %w", name, err)
	}
	return nil
}

// AccessTokens lists every token, revoked ones too, by name.
func AccessTokens(ctx context.Context, db DBTX) ([]AccessToken, error) {
	rows, err := db.Query(ctx, `SELECT id, name, role, created_at, last_used_at, revoked_at FROM access_tokens ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	tokens, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (AccessToken, error) {
		var t AccessToken
		return t, row.Scan(&t.ID, &t.Name, &t.Role, &t.CreatedAt, &t.LastUsedAt, &t.RevokedAt)
	})
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	return tokens, nil
}

// ActiveAccessToken returns the unrevoked token with this hash and marks it
// used (at most once a minute, so that reads do not turn into a write
// each); an error wrapping ErrNotFound when there is none.
func ActiveAccessToken(ctx context.Context, db DBTX, hash []byte, now time.Time) (*AccessToken, error) {
	var t AccessToken
	err := db.QueryRow(ctx, `SELECT id, name, role, created_at, last_used_at FROM access_tokens
		WHERE hash = $1 AND revoked_at IS NULL`, hash).Scan(&t.ID, &t.Name, &t.Role, &t.CreatedAt, &t.LastUsedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("token: %w", ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read token: %w", err)
	}
	if t.LastUsedAt == nil || now.Sub(*t.LastUsedAt) >= time.Minute {
		if _, err := db.Exec(ctx, `UPDATE access_tokens SET last_used_at = $2 WHERE id = $1`, t.ID, now); err != nil {
			return nil, fmt.Errorf("mark token %q used: %w", t.Name, err)
		}
		t.LastUsedAt = &now
	}
	return &t, nil
}

// RevokeAccessToken revokes the named token and deletes its console
// sessions, returning how many sessions ended; an error wrapping
// ErrNotFound when no unrevoked token has this name.
func RevokeAccessToken(ctx context.Context, db DBTX, name string, now time.Time) (sessions int64, err error) {
	var id int64
	err = db.QueryRow(ctx, `UPDATE access_tokens SET revoked_at = $2 WHERE name = $1 AND revoked_at IS NULL RETURNING id`,
		name, now).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("token %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("revoke token %q: %w", name, err)
	}
	tag, err := db.Exec(ctx, `DELETE FROM console_sessions WHERE token_id = $1`, id)
	if err != nil {
		return 0, fmt.Errorf("end the sessions of token %q: %w", name, err)
	}
	return tag.RowsAffected(), nil
}

// ConsoleSession is a signed-in browser. TokenID is nil for a session of
// POSTCALL_API_TOKEN, whose hash is then APITokenHash.
type ConsoleSession struct {
	TokenID      *int64
	TokenName    string
	APITokenHash []byte
	Role         string
	CSRF         string
	ExpiresAt    time.Time
}

// InsertConsoleSession stores a session under the hash of its id, and
// deletes expired sessions on the way (sign-ins are rare; no sweeper job is
// needed).
func InsertConsoleSession(ctx context.Context, db DBTX, idHash []byte, s ConsoleSession, now time.Time) error {
	if _, err := db.Exec(ctx, `DELETE FROM console_sessions WHERE expires_at <= $1`, now); err != nil {
		return fmt.Errorf("delete expired sessions: %w", err)
	}
	_, err := db.Exec(ctx, `INSERT INTO console_sessions (id_hash, token_id, api_token_hash, role, csrf, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, idHash, s.TokenID, s.APITokenHash, s.Role, s.CSRF, now, s.ExpiresAt)
	if err != nil {
		return fmt.Errorf("store session: %w", err)
	}
	return nil
}

// GetConsoleSession returns the unexpired session with this id hash whose
// token is not revoked; an error wrapping ErrNotFound otherwise.
func GetConsoleSession(ctx context.Context, db DBTX, idHash []byte, now time.Time) (*ConsoleSession, error) {
	var s ConsoleSession
	var name *string
	err := db.QueryRow(ctx, `SELECT s.token_id, t.name, s.api_token_hash, s.role, s.csrf, s.expires_at
		FROM console_sessions s LEFT JOIN access_tokens t ON t.id = s.token_id
		WHERE s.id_hash = $1 AND s.expires_at > $2 AND (s.token_id IS NULL OR t.revoked_at IS NULL)`,
		idHash, now).Scan(&s.TokenID, &name, &s.APITokenHash, &s.Role, &s.CSRF, &s.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("session: %w", ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read session: %w", err)
	}
	s.TokenName = deref(name)
	return &s, nil
}

// DeleteConsoleSession ends a session.
func DeleteConsoleSession(ctx context.Context, db DBTX, idHash []byte) error {
	if _, err := db.Exec(ctx, `DELETE FROM console_sessions WHERE id_hash = $1`, idHash); err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	return nil
}
