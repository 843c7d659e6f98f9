package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	metasrvv1 "github.com/pgmetasrv/metasrv/pkg/api/metasrv/v1"

	"github.com/pgmetasrv/metasrv/pkg/backoff"
)

// route says which nodes may serve a call.
type route int

const (
	toLeader route = iota // writes, linearizable reads, procedures
	toAny                 // serializable reads, cluster membership
)

// callKind says what may be retried.
type callKind int

const (
	// idempotent calls are retried on any transient failure.
	idempotent callKind = iota
	// mutating calls are re-sent only when certainly not executed.
	mutating
)

// A hint names the leader directly, so it is followed without pausing; but
// two nodes naming each other during a hand-over must not spin, hence a cap
// on consecutive follows.
const maxHintHops = 3

type decision int

const (
	stop decision = iota
	followHint
	rediscover
	retry
)

type response interface {
	GetHeader() *metasrvv1.ResponseHeader
}

// invoke runs fn against the node route picks, retrying per kind until it
// succeeds, fails for good, or ctx (bounded by RequestTimeout when it has no
// deadline) ends. Each attempt is bounded by AttemptTimeout.
func invoke[T response](ctx context.Context, c *Client, r route, kind callKind, fn func(context.Context, *grpc.ClientConn) (T, error)) (T, error) {
	return invokeHolding(ctx, c, r, kind, 0, fn)
}

// invokeHolding is invoke for a call the server may legitimately hold for
// up to hold before answering (a long poll): each attempt gets hold on top
// of AttemptTimeout.
func invokeHolding[T response](ctx context.Context, c *Client, r route, kind callKind, hold time.Duration, fn func(context.Context, *grpc.ClientConn) (T, error)) (T, error) {
	var zero T
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.RequestTimeout)
		defer cancel()
	}
	perAttempt := c.cfg.AttemptTimeout + hold
	var lastErr error
	hops := 0
	// waited: the last attempt already spent its whole timeout, so pausing
	// again before the next one would only delay the failover.
	waited := false
	for attempt := 0; ; attempt++ {
		if attempt > 0 && hops == 0 && !waited {
			if err := c.pause(ctx, attempt); err != nil {
				return zero, giveUp(attempt, err, lastErr)
			}
		}
		waited = false
		addr, err := c.target(ctx, r)
		if err != nil {
			if errors.Is(err, ErrClosed) || ctx.Err() != nil {
				return zero, giveUp(attempt, err, lastErr)
			}
			lastErr, hops = err, 0
			continue
		}
		cc, err := c.conn(addr)
		if err != nil {
			return zero, err
		}
		if err := c.waitReady(ctx, cc); err != nil {
			if errors.Is(err, ErrClosed) || ctx.Err() != nil {
				return zero, giveUp(attempt+1, ctx.Err(), fmt.Errorf("%s: %w", addr, err))
			}
			// Not sent: safe to try elsewhere whatever the call is.
			lastErr, hops = c.notSent(r, addr, err), 0
			continue
		}
		actx, cancel := context.WithTimeout(ctx, perAttempt)
		resp, err := fn(actx, cc)
		cancel()
		if err == nil {
			c.observeFrom(addr, resp.GetHeader())
			return resp, nil
		}
		lastErr = toError(err)
		if unanswered(err) {
			// The node took the call and went silent: frozen, cut off, or
			// stuck on PostgreSQL. Waiting on it again would cost another
			// attempt, so whoever calls next asks the cluster who leads.
			// Also when the caller's own deadline cut the attempt: a
			// caller that is always quicker than AttemptTimeout would
			// otherwise stay on a frozen leader for ever; the price is one
			// leader look-up after such a call.
			if r == toLeader {
				c.forgetLeader(addr)
			}
			if ctx.Err() == nil {
				lastErr = fmt.Errorf("%s: no answer within the attempt timeout %s: %w", addr, perAttempt, lastErr)
				if kind == mutating {
					// It may be applied yet: never re-sent.
					return zero, &outcomeUnknown{err: lastErr}
				}
				hops, waited = 0, true
				c.logger.Debug("attempt timed out, trying another node", "node", addr, "timeout", perAttempt)
				continue
			}
		}
		var final error
		if hops, final = c.afterFailure(ctx, err, lastErr, kind, r, addr, hops); final != nil {
			return zero, final
		}
	}
}

// notSent is the error of an attempt that could not be sent to addr, which
// is no longer trusted as the leader.
func (c *Client) notSent(r route, addr string, err error) error {
	if r != toLeader {
		return fmt.Errorf("%s: %w", addr, err)
	}
	c.forgetLeader(addr)
	if !c.isEndpoint(addr) {
		// A leader named by its advertised address; the next discovery
		// looks for it among the endpoints.
		return fmt.Errorf("leader %s (its advertised grpc.server_addr) is not among the endpoints %v and cannot be reached from here: "+
			"list its reachable address in the endpoints, or advertise one clients can reach: %w", addr, c.cfg.Endpoints, err)
	}
	return fmt.Errorf("%s: %w", addr, err)
}

// afterFailure acts on a failed attempt at addr: it returns the hint hops
// to go on with, or the error that ends the call (final != nil).
func (c *Client) afterFailure(ctx context.Context, err, lastErr error, kind callKind, r route, addr string, hops int) (int, error) {
	d, hint := decide(ctx, err, kind, addr)
	switch d {
	case followHint:
		c.setLeader(hint, 0)
		if hops++; hops > maxHintHops {
			hops = 0
		}
		return hops, nil
	case rediscover:
		if r == toLeader {
			c.forgetLeader(addr)
		}
		return 0, nil
	case retry:
		return 0, nil
	}
	if kind == mutating && sentAndLost(ctx, err) {
		if r == toLeader {
			c.forgetLeader(addr)
		}
		return hops, &outcomeUnknown{err: lastErr}
	}
	return hops, lastErr
}

// observeFrom learns from the header of an answer addr gave. When the
// answering node is the leader, it is recorded as addr, the address this
// client reaches it at, rather than the name it advertises, which may not
// resolve here.
func (c *Client) observeFrom(addr string, h *metasrvv1.ResponseHeader) {
	if h.GetNodeAddr() != "" && h.GetNodeAddr() == h.GetLeaderAddr() && h.GetTerm() != 0 {
		c.mu.Lock()
		newer := h.GetTerm() > c.term
		c.mu.Unlock()
		if newer {
			c.setLeader(addr, h.GetTerm())
		}
		return
	}
	c.observe(h)
}

// unanswered reports whether a failed attempt got no answer from the node
// before a deadline passed: the attempt's own or the caller's, as gRPC
// reports it on either side, with no explanation from the server.
func unanswered(err error) bool {
	if _, ok := metasrvv1.ErrorInfoOf(err); ok {
		return false
	}
	return status.Code(err) == codes.DeadlineExceeded
}

// decide says what to do after a failed attempt at addr.
func decide(ctx context.Context, err error, kind callKind, addr string) (decision, string) {
	if info, ok := metasrvv1.ErrorInfoOf(err); ok {
		// The server explains itself; every reason but a lost outcome means
		// "not executed", so writes may be re-sent too.
		switch info.GetReason() {
		case metasrvv1.ReasonNotLeader:
			if h := info.GetMetadata()[metasrvv1.MetadataLeader]; h != "" && h != addr {
				return followHint, h
			}
			return rediscover, ""
		case metasrvv1.ReasonFenced, metasrvv1.ReasonNoLeader:
			return rediscover, ""
		case metasrvv1.ReasonBackendUnavailable:
			return retry, ""
		default:
			return stop, ""
		}
	}
	if ctx.Err() != nil || kind == mutating {
		return stop, ""
	}
	if status.Code(err) == codes.Unavailable {
		// The connection broke; for a read, asking again is harmless.
		return rediscover, ""
	}
	return stop, ""
}

// sentAndLost reports whether a failed call may have executed without the
// client learning its result: its connection broke, or its deadline passed,
// with no explanation from the server.
func sentAndLost(ctx context.Context, err error) bool {
	if _, ok := metasrvv1.ErrorInfoOf(err); ok {
		return false
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled:
		return true
	default:
		return ctx.Err() != nil
	}
}

func giveUp(attempts int, cause, last error) error {
	if last == nil {
		return cause
	}
	return fmt.Errorf("metasrv: gave up after %d attempts: %w (last error: %w)", attempts, cause, last)
}

// target picks the node for the next attempt.
func (c *Client) target(ctx context.Context, r route) (string, error) {
	if r == toAny {
		return c.nextEndpoint(), nil
	}
	if l := c.cachedLeader(); l != "" {
		return l, nil
	}
	return c.discover(ctx)
}

// pause sleeps before retry number attempt: exponential from
// MinRetryBackoff, capped at MaxRetryBackoff, with jitter so clients that
// failed together do not retry together.
func (c *Client) pause(ctx context.Context, attempt int) error {
	return backoff.Sleep(ctx, backoff.Policy{Base: c.cfg.MinRetryBackoff, Max: c.cfg.MaxRetryBackoff}.Delay(attempt))
}
