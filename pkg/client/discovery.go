package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/status"

	metasrvv1 "github.com/pgmetasrv/metasrv/pkg/api/metasrv/v1"
)

// discovery is one round of asking every endpoint who leads; concurrent
// callers share the round in flight instead of each starting their own.
type discovery struct {
	done   chan struct{}
	leader Leader
	err    error
}

// discoveryError is a failed round: no endpoint named a leader.
type discoveryError struct {
	errs []error
	// reached: at least one endpoint answered (it knew no leader), so the
	// cluster is there and may elect one soon.
	reached bool
}

func (e *discoveryError) Error() string {
	return fmt.Sprintf("no endpoint named a leader: %v", errors.Join(e.errs...))
}

func (e *discoveryError) Unwrap() []error { return e.errs }

// discover finds the leader, records it, and returns the leader the client
// now believes in (a stale answer never replaces a newer known term).
func (c *Client) discover(ctx context.Context) (string, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return "", ErrClosed
	}
	d := c.inflight
	if d == nil {
		d = &discovery{done: make(chan struct{})}
		c.inflight = d
		// Added under mu while not closed, so Close's Wait sees it.
		c.bg.Add(1)
		go c.runDiscovery(d)
	}
	c.mu.Unlock()
	select {
	case <-d.done:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	if d.err != nil {
		return "", d.err
	}
	c.setLeader(d.leader.Addr, d.leader.Term)
	if l := c.cachedLeader(); l != "" {
		return l, nil
	}
	return d.leader.Addr, nil
}

func (c *Client) runDiscovery(d *discovery) {
	defer c.bg.Done()
	// Bounded by the client's life, not a caller's context: the round is
	// shared, and one caller giving up must not fail the others.
	ctx, cancel := context.WithTimeout(c.life, 2*c.cfg.DialTimeout)
	defer cancel()

	type answer struct {
		leader   Leader
		err      error
		answered bool
		// direct: leader.Addr is an endpoint's own address (the endpoint
		// leads, or named an endpoint), not an advertised name the client
		// may be unable to dial.
		direct bool
	}
	answers := make(chan answer, len(c.cfg.Endpoints))
	var wg sync.WaitGroup
	for _, e := range c.cfg.Endpoints {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, answered, err := c.askLeader(ctx, e)
			answers <- answer{leader: l, err: err, answered: answered, direct: err == nil && c.isEndpoint(l.Addr)}
		}()
	}
	// An answer naming an endpoint settles the round. One naming the leader
	// by an advertised address only (grpc.server_addr, which may resolve
	// only among the nodes, as docker-compose's service names do) is kept
	// while the other endpoints answer: the leader may be one of them, and
	// its own answer gives the address this client reaches it by.
	de := &discoveryError{}
	var hearsay Leader
	for range c.cfg.Endpoints {
		a := <-answers
		if a.err == nil {
			if a.direct {
				d.leader = a.leader
				break
			}
			if hearsay.Addr == "" || a.leader.Term > hearsay.Term {
				hearsay = a.leader
			}
			continue
		}
		de.errs = append(de.errs, a.err)
		de.reached = de.reached || a.answered
	}
	if d.leader.Addr == "" {
		d.leader = hearsay
	}
	if d.leader.Addr == "" {
		d.err = de
	}
	c.mu.Lock()
	c.inflight = nil
	c.mu.Unlock()
	close(d.done)
	cancel()
	wg.Wait()
}

// askLeader asks one endpoint. answered reports whether the endpoint replied
// at all (even "no leader").
func (c *Client) askLeader(ctx context.Context, endpoint string) (Leader, bool, error) {
	cc, err := c.conn(endpoint)
	if err != nil {
		return Leader{}, false, err
	}
	if err := c.waitReady(ctx, cc); err != nil {
		return Leader{}, false, fmt.Errorf("%s: %w", endpoint, err)
	}
	// One attempt like any other: a frozen endpoint must not hold up a
	// round that the others could not settle (they know no leader yet).
	ctx, cancel := context.WithTimeout(ctx, c.cfg.AttemptTimeout)
	defer cancel()
	resp, err := metasrvv1.NewClusterClient(cc).Leader(ctx, &metasrvv1.LeaderRequest{Header: c.reqHeader})
	if err != nil {
		_, answered := metasrvv1.ErrorInfoOf(err)
		return Leader{}, answered, fmt.Errorf("%s: %w", endpoint, toError(err))
	}
	if resp.GetAddress() == "" {
		return Leader{}, true, fmt.Errorf("%s: answered without a leader address", endpoint)
	}
	if h := resp.GetHeader(); h.GetNodeAddr() != "" && h.GetNodeAddr() == resp.GetAddress() {
		// The endpoint is the leader: remember it by the address this
		// client reached it at, not by the name it advertises.
		return Leader{Addr: endpoint, Term: resp.GetTerm()}, true, nil
	}
	return Leader{Addr: resp.GetAddress(), Term: resp.GetTerm()}, true, nil
}

// isEndpoint reports whether addr is one of the configured endpoints.
func (c *Client) isEndpoint(addr string) bool {
	return slices.Contains(c.cfg.Endpoints, addr)
}

// errNotConnected means a call was not sent because no connection could be
// established: safe to retry elsewhere, even for a write.
var errNotConnected = errors.New("not connected")

// waitReady waits until cc is connected, up to DialTimeout. Making sure
// before sending is what lets a write go to another node when the leader is
// down: a call that never left the client cannot have been applied.
func (c *Client) waitReady(ctx context.Context, cc *grpc.ClientConn) error {
	if cc.GetState() == connectivity.Ready {
		// The common case, without the timer a bounded wait costs.
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
	defer cancel()
	for {
		s := cc.GetState()
		switch s {
		case connectivity.Ready:
			return nil
		case connectivity.Idle:
			cc.Connect()
		case connectivity.TransientFailure:
			// gRPC retries by itself after its backoff; the caller should
			// try another node meanwhile rather than wait.
			return fmt.Errorf("%w: connection failed", errNotConnected)
		case connectivity.Shutdown:
			return ErrClosed
		}
		if !cc.WaitForStateChange(ctx, s) {
			return fmt.Errorf("%w within %s: %w", errNotConnected, c.cfg.DialTimeout, ctx.Err())
		}
	}
}

// isRetryable reports whether a failed discovery may succeed later.
func isRetryable(err error) bool {
	var de *discoveryError
	if errors.As(err, &de) {
		return de.reached
	}
	_, ok := status.FromError(err)
	return ok
}
