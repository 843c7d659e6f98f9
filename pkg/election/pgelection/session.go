package pgelection

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgmetasrv/metasrv/pkg/postgres"
)

// sessionConn is the part of *pgx.Conn the election session uses; tests wrap
// it to inject faults.
type sessionConn interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	WaitForNotification(ctx context.Context) (*pgconn.Notification, error)
	IsClosed() bool
	Close(ctx context.Context) error
}

// session is one election connection: dedicated, never pooled, and closed
// on the first error, which is what makes PostgreSQL drop its lock.
type session struct {
	conn sessionConn
	pid  uint32
}

// sessionParams bound how long PostgreSQL keeps the lock of a holder that
// vanished or froze. idle_session_timeout is the crux: a holder that sends
// nothing for a lease loses its session, hence its lock; the leader renews
// every lease/3 and stops trusting itself before that can happen.
func (e *Elector) sessionParams() map[string]string {
	ms := func(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }
	keepIdle := max(1, int(e.renewEvery/time.Second))
	return map[string]string{
		"idle_session_timeout":                ms(e.lease),
		"idle_in_transaction_session_timeout": ms(e.lease),
		"statement_timeout":                   ms(e.lease),
		"lock_timeout":                        ms(e.lease),
		"tcp_user_timeout":                    ms(e.lease),
		"tcp_keepalives_idle":                 strconv.Itoa(keepIdle),
		"tcp_keepalives_interval":             "1",
		"tcp_keepalives_count":                "3",
	}
}

// connect opens a session and LISTENs for resignations on it.
func (e *Elector) connect(ctx context.Context) (*session, error) {
	cc := e.connConfig.Copy()
	for k, v := range e.sessionParams() {
		cc.RuntimeParams[k] = v
	}
	// The client side of the same bound: keepalives notice a dead peer, and
	// every statement carries its own deadline.
	dialer := &net.Dialer{
		Timeout: e.connectTimeout,
		KeepAliveConfig: net.KeepAliveConfig{
			Enable:   true,
			Idle:     e.renewEvery,
			Interval: time.Second,
			Count:    3,
		},
	}
	cc.DialFunc = dialer.DialContext
	cctx, cancel := context.WithTimeout(ctx, e.connectTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, cc)
	if err != nil {
		return nil, fmt.Errorf("connect election session: %w", err)
	}
	s := &session{conn: conn, pid: conn.PgConn().PID()}
	if e.cfg.wrapSession != nil {
		s.conn = e.cfg.wrapSession(conn)
	}
	if _, err := s.conn.Exec(cctx, "LISTEN "+postgres.QuoteIdent(e.channel)); err != nil {
		e.closeSession(s)
		return nil, fmt.Errorf("listen on %s: %w", e.channel, err)
	}
	if err := probeSession(cctx, s); err != nil {
		e.closeSession(s)
		return nil, err
	}
	return s, nil
}

// ErrNotASession means the election connection does not keep one PostgreSQL
// backend from statement to statement, as behind a pooler in transaction or
// statement mode (PgBouncer's default for many deployments). Advisory locks
// and LISTEN belong to a backend, so such a connection cannot hold
// leadership: the election refuses to run on it.
var ErrNotASession = errors.New("pgelection: the election connection is not a PostgreSQL session (a connection pooler in transaction or statement mode?); connect the election directly or through session pooling")

// probeSession sets a session variable in one statement and reads it back with
// the backend pid in the next: a pooler that moves statements between
// backends loses the variable. It also records the real backend pid, which a
// pooler's startup message would misreport.
func probeSession(ctx context.Context, s *session) error {
	nonce := strconv.FormatUint(rand.Uint64(), 36)
	if _, err := s.conn.Exec(ctx, `SELECT set_config('metasrv.election_probe', $1, false)`, nonce); err != nil {
		return fmt.Errorf("probe election session: %w", err)
	}
	var pid uint32
	var got string
	if err := s.conn.QueryRow(ctx, `SELECT pg_backend_pid(), current_setting('metasrv.election_probe', true)`).Scan(&pid, &got); err != nil {
		return fmt.Errorf("probe election session: %w", err)
	}
	if got != nonce {
		return ErrNotASession
	}
	s.pid = pid
	return nil
}

// closeSession closes the connection with a short deadline: on a
// blackholed link the polite Terminate message must not hold us up.
func (e *Elector) closeSession(s *session) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := s.conn.Close(ctx); err != nil {
		e.logger.Debug("close election session", "pid", s.pid, "err", err)
	}
}

// queryCtx is the context of one statement on the session: it ends at
// deadline, but not when the campaign is stopped, so a stopping leader
// finishes its statement and can still resign on a healthy session.
func queryCtx(ctx context.Context, deadline time.Time) (context.Context, context.CancelFunc) {
	return context.WithDeadline(context.WithoutCancel(ctx), deadline)
}
