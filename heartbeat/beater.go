package heartbeat

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
)

// Beater records one process's heartbeat every Interval until its context
// ends. It beats over a connection of its own, not the pool's: a worker
// whose pool is taken by running jobs must still be seen alive.
type Beater struct {
	// ConnConfig is the database to beat in (a pool's ConnConfig, with its
	// search_path). Required.
	ConnConfig *pgx.ConnConfig
	// ClientID is the process's River client id. Required.
	ClientID string
	// Interval is the time between beats. Default DefaultInterval.
	Interval time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Run beats at once, then every Interval, until ctx ends. A failed beat is
// logged and retried at the next tick on a new connection; Run returns only
// when ctx ends.
func (b *Beater) Run(ctx context.Context) {
	interval := cmp.Or(b.Interval, DefaultInterval)
	log := cmp.Or(b.Logger, slog.Default())
	host, _ := os.Hostname()
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			_ = conn.Close(context.WithoutCancel(ctx))
		}
	}()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		if err := b.beat(ctx, &conn, host, interval, log); err != nil && ctx.Err() == nil {
			log.Warn("heartbeat failed; retrying", slog.String("client_id", b.ClientID), slog.String("error", err.Error()))
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (b *Beater) beat(ctx context.Context, conn **pgx.Conn, host string, interval time.Duration, log *slog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, interval)
	defer cancel()
	if *conn == nil {
		c, err := pgx.ConnectConfig(ctx, b.ConnConfig.Copy())
		if err != nil {
			return fmt.Errorf("connect: %w", err)
		}
		*conn = c
	}
	deadAt, err := Beat(ctx, *conn, b.ClientID, host, os.Getpid())
	if err != nil {
		_ = (*conn).Close(context.WithoutCancel(ctx))
		*conn = nil
		return err
	}
	if deadAt != nil {
		log.Warn("this worker was declared dead or stopped while it could not beat; the jobs it was running were rescued and are abandoned here",
			slog.String("client_id", b.ClientID), slog.Time("declared_at", *deadAt))
	}
	return nil
}
