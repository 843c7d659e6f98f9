package pgkv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgmetasrv/metasrv/pkg/backoff"
	"github.com/pgmetasrv/metasrv/pkg/kv"
)

// opKind says what a failed attempt may have left behind, which decides
// whether it can be retried and how its error reads.
type opKind int

const (
	// readOp changes nothing: retried on any connection failure.
	readOp opKind = iota
	// writeOp is an autocommit statement or a pipelined transaction whose
	// COMMIT goes out with it: once sent, a broken connection leaves the
	// outcome unknown.
	writeOp
	// txOp is an explicit transaction: only a failure during COMMIT leaves the
	// outcome unknown; before it, the transaction simply did not happen.
	txOp
)

// errStaleSnapshot is returned by an attempt whose statement raced a
// concurrent change and must run again; it changed nothing.
var errStaleSnapshot = errors.New("statement snapshot raced a concurrent change")

// commitError marks an error returned by COMMIT.
type commitError struct{ err error }

func (e *commitError) Error() string { return "commit: " + e.err.Error() }
func (e *commitError) Unwrap() error { return e.err }

// notSentError marks an error that happened before anything reached the
// server.
type notSentError struct{ err error }

func (e *notSentError) Error() string     { return e.err.Error() }
func (e *notSentError) Unwrap() error     { return e.err }
func (e *notSentError) SafeToRetry() bool { return true }

// run calls attempt until it succeeds, fails for good, runs out of attempts or
// ctx ends. Every error it returns names op.
func (s *Store) run(ctx context.Context, op string, kind opKind, attempt func(ctx context.Context) error) error {
	for n := 1; ; n++ {
		err := attempt(ctx)
		if err == nil {
			return nil
		}
		retry, final := judge(ctx, op, kind, err)
		if !retry {
			return final
		}
		if n >= s.opts.MaxAttempts {
			s.logger.WarnContext(ctx, "retries exhausted", "op", op, "attempts", n, "err", err)
			return fmt.Errorf("pgkv: %s: gave up after %d attempts: %w: %w", op, n, kv.ErrUnavailable, err)
		}
		wait := s.backoff(n)
		s.logger.DebugContext(ctx, "retrying", "op", op, "attempt", n, "backoff", wait, "err", err)
		if serr := backoff.Sleep(ctx, wait); serr != nil {
			return fmt.Errorf("pgkv: %s: %w (while waiting to retry after: %v)", op, serr, err)
		}
	}
}

// judge decides whether a failed attempt may run again, and otherwise builds
// the error the caller sees.
func judge(ctx context.Context, op string, kind opKind, err error) (retry bool, final error) {
	var pgErr *pgconn.PgError
	statementFailed := errors.As(err, &pgErr) && severity(pgErr) == "ERROR"
	var commitErr *commitError
	inCommit := errors.As(err, &commitErr)
	switch {
	case errors.Is(err, errStaleSnapshot):
		return true, nil
	case statementFailed && (pgErr.Code == "40001" || pgErr.Code == "40P01"):
		// Serialisation failure or deadlock: the transaction was rolled back.
		return true, nil
	case statementFailed && pgErr.Code == "54000":
		// program_limit_exceeded: the request is over one of PostgreSQL's own
		// limits, a key too long for the B-tree index above all (kv.WithLimits
		// keeps keys within max_key_size, below it). Retrying cannot help.
		return false, fmt.Errorf("pgkv: %s: %w: the request is over a PostgreSQL limit, most likely a key longer than the %d bytes (store_key_prefix included) its B-tree index accepts; keep keys within max_key_size: %w",
			op, kv.ErrInvalidArgument, kv.MaxStoredKeySize, err)
	case statementFailed && transientClass(pgErr.Code):
		return false, fmt.Errorf("pgkv: %s: %w: %w", op, kv.ErrUnavailable, err)
	case statementFailed, errors.Is(err, pgx.ErrTxCommitRollback):
		// The server refused the statement: nothing was applied.
		return false, fmt.Errorf("pgkv: %s: %w", op, err)
	case (kind == writeOp && !nothingSent(err)) || (kind == txOp && inCommit):
		return false, fmt.Errorf("pgkv: %s: %w: the connection failed after the write was sent, it may or may not have been applied: %w: %w",
			op, kv.ErrOutcomeUnknown, kv.ErrUnavailable, withCtxErr(ctx, err))
	case ctx.Err() != nil:
		return false, fmt.Errorf("pgkv: %s: %w", op, withCtxErr(ctx, err))
	case IsConnFailure(err) && (kind == readOp || nothingSent(err)):
		return true, nil
	case IsConnFailure(err):
		return false, fmt.Errorf("pgkv: %s: %w: connection failed, the transaction was not committed: %w", op, kv.ErrUnavailable, err)
	default:
		return false, fmt.Errorf("pgkv: %s: %w", op, err)
	}
}

// withCtxErr makes sure errors.Is(err, ctx.Err()) holds once ctx has ended:
// pgx reports a deadline that struck mid-read as an I/O timeout.
func withCtxErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%w: %w", cerr, err)
	}
	return err
}

func severity(e *pgconn.PgError) string {
	if e.SeverityUnlocalized != "" {
		return e.SeverityUnlocalized
	}
	return e.Severity
}

// transientClass reports SQLSTATE classes that describe the server's state
// rather than the request: connection exceptions, insufficient resources,
// operator intervention (shutdown, cancel), system errors.
func transientClass(code string) bool {
	for _, class := range []string{"08", "53", "57", "58"} {
		if strings.HasPrefix(code, class) {
			return true
		}
	}
	return false
}

// nothingSent reports an error that happened before anything reached the
// server (acquiring or dialling a connection, a context already done).
func nothingSent(err error) bool {
	var connectErr *pgconn.ConnectError
	return pgconn.SafeToRetry(err) || errors.As(err, &connectErr)
}

// IsConnFailure reports an error of the connection rather than of the
// statement: the server ended the session (FATAL, class 08), or the network
// or pool failed. Callers outside the package use it to retry work that a
// lost connection cut short (a start-up migration).
func IsConnFailure(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return severity(pgErr) != "ERROR" || strings.HasPrefix(pgErr.Code, "08")
	}
	var netErr net.Error
	return nothingSent(err) || errors.As(err, &netErr) || pgconn.Timeout(err) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, pgconn.ErrConnClosed)
}

// backoff draws the wait before retry n (n >= 1) uniformly from
// [0, min(MaxBackoff, BaseBackoff * 2^(n-1))): full jitter, so contenders that
// collided once spread out.
func (s *Store) backoff(n int) time.Duration {
	return backoff.Policy{Base: s.opts.BaseBackoff, Max: s.opts.MaxBackoff, FullJitter: true}.Delay(n)
}
