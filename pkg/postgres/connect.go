package postgres

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgmetasrv/metasrv/pkg/backoff"
)

// Backoff bounds of Connect: the first retry comes quickly (PostgreSQL may be
// finishing its start-up), later ones at most every few seconds.
const (
	connectBackoffMin = 100 * time.Millisecond
	connectBackoffMax = 5 * time.Second
)

// Connect creates a pool and checks it with a ping. While PostgreSQL cannot
// be reached it retries with capped exponential backoff and jitter, logging
// every failure at warn, until ctx ends; then it returns the last error. A
// failure that waiting cannot cure (bad password, missing database, an
// untrusted server certificate) is returned at once.
func Connect(ctx context.Context, cfg *pgxpool.Config, logger *slog.Logger) (*pgxpool.Pool, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	addr := Describe(cfg.ConnConfig.Config)
	pause := backoff.Policy{Base: connectBackoffMin, Max: connectBackoffMax}
	for attempt := 1; ; attempt++ {
		pool, err := tryConnect(ctx, cfg)
		if err == nil {
			if attempt > 1 {
				logger.Info("connected to postgresql", "addr", addr, "attempts", attempt)
			}
			return pool, nil
		}
		if permanent(err) {
			return nil, fmt.Errorf("connect to postgresql %s: %w", addr, err)
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("connect to postgresql %s: gave up after %d attempts (%w): %w", addr, attempt, ctx.Err(), err)
		}
		// Jitter: nodes restarted together spread out.
		wait := pause.Delay(attempt)
		logger.Warn("postgresql unreachable, retrying", "addr", addr, "attempt", attempt, "retry_in", wait, "err", err)
		if backoff.Sleep(ctx, wait) != nil {
			return nil, fmt.Errorf("connect to postgresql %s: gave up after %d attempts (%w): %w", addr, attempt, ctx.Err(), err)
		}
	}
}

func tryConnect(ctx context.Context, cfg *pgxpool.Config) (*pgxpool.Pool, error) {
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

// permanent reports errors that retrying cannot fix: PostgreSQL refused the
// credentials or the database, or the server's certificate is not trusted.
func permanent(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "28"), // invalid authorization
			pgErr.Code == "3D000", // database does not exist
			pgErr.Code == "42501": // no CONNECT privilege
			return true
		}
	}
	var (
		unknownAuthority x509.UnknownAuthorityError
		hostname         x509.HostnameError
		invalid          x509.CertificateInvalidError
		verification     *tls.CertificateVerificationError
	)
	return errors.As(err, &unknownAuthority) || errors.As(err, &hostname) ||
		errors.As(err, &invalid) || errors.As(err, &verification)
}
