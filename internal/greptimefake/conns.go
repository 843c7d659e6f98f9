package greptimefake

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"

	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
)

// maxMessageSize is GreptimeDB's DEFAULT_MAX_GRPC_{RECV,SEND}_MESSAGE_SIZE
// (512 MiB), which its meta clients set on every stub.
const maxMessageSize = 512 << 20

// Conns is a pool of gRPC client connections, one per metasrv address, shared
// by any number of nodes (GreptimeDB's ChannelManager, shared across a whole
// process). Connections are made on first use. It is safe for concurrent use.
type Conns struct {
	opts []grpc.DialOption

	mu     sync.Mutex
	conns  map[string]*grpc.ClientConn
	closed bool
}

// NewConns returns an empty pool. The connections it makes use plaintext,
// GreptimeDB's 512 MiB message limits and its 1 s connect timeout, then
// dialOpts (which override those: pass transport credentials for TLS, or
// keepalive parameters; GreptimeDB's heartbeat channel pings every 15 s,
// which a grpc-go server only accepts with a matching enforcement policy, so
// it is not a default).
//
// Reconnect backoff is capped at 3 s: tonic reconnects on demand, so a
// restarted metasrv must be reachable again within about one retry interval.
func NewConns(dialOpts ...grpc.DialOption) *Conns {
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMessageSize), grpc.MaxCallSendMsgSize(maxMessageSize)),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: backoff.Config{
				BaseDelay:  100 * time.Millisecond,
				Multiplier: 1.6,
				Jitter:     0.2,
				MaxDelay:   3 * time.Second,
			},
			MinConnectTimeout: time.Second,
		}),
	}
	return &Conns{opts: append(opts, dialOpts...), conns: make(map[string]*grpc.ClientConn)}
}

// Get returns the connection to addr, creating it on first use.
func (c *Conns) Get(addr string) (*grpc.ClientConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errors.New("greptimefake: connection pool is closed")
	}
	if cc, ok := c.conns[addr]; ok {
		return cc, nil
	}
	cc, err := grpc.NewClient(addr, c.opts...)
	if err != nil {
		return nil, fmt.Errorf("greptimefake: connect to %q: %w", addr, err)
	}
	c.conns[addr] = cc
	return cc, nil
}

// Close closes every connection; Get fails afterwards. Safe to call twice.
func (c *Conns) Close() {
	c.mu.Lock()
	conns := c.conns
	c.conns = nil
	c.closed = true
	c.mu.Unlock()
	for _, cc := range conns {
		_ = cc.Close()
	}
}

// resetBackoff makes the connections to addrs retry at once. It stands in for
// GreptimeDB dropping its cached channel to a peer that failed an ask-leader
// call: dropping a shared connection would break every other node's stream.
func (c *Conns) resetBackoff(addrs []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, a := range addrs {
		if cc, ok := c.conns[a]; ok {
			cc.ResetConnectBackoff()
		}
	}
}

// AskLeader asks every endpoint, in parallel and in shuffled order, which
// metasrv is the leader, as GreptimeDB's meta-client does (ask_leader_inner):
// the first OK answer that names a leader wins and its address is returned
// verbatim (its header is not checked); failed peers and answers without a
// leader are ignored. When no peer names a leader it waits the whole timeout
// (default HeartbeatTimeout) before failing. One call is one round; the
// client's retries are the caller's (Node does AskLeaderMaxRetry rounds).
// opts are added to every call (e.g. grpc.UseCompressor).
//
// The losing calls are cancelled and waited for before it returns, so no
// goroutine outlives the call.
func AskLeader(ctx context.Context, conns *Conns, endpoints []string, header *metapb.RequestHeader, timeout time.Duration, opts ...grpc.CallOption) (string, error) {
	if len(endpoints) == 0 {
		return "", errors.New("greptimefake: ask leader: no endpoints")
	}
	if timeout <= 0 {
		timeout = HeartbeatTimeout
	}
	peers := slices.Clone(endpoints)
	rand.Shuffle(len(peers), func(i, j int) { peers[i], peers[j] = peers[j], peers[i] })

	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req := &metapb.AskLeaderRequest{Header: header}
	winner := make(chan string, len(peers))
	var (
		wg    sync.WaitGroup
		errMu sync.Mutex
		errs  []error
		fail  = func(err error) {
			errMu.Lock()
			errs = append(errs, err)
			errMu.Unlock()
		}
	)
	for _, addr := range peers {
		cc, err := conns.Get(addr)
		if err != nil {
			fail(err)
			continue
		}
		wg.Go(func() {
			resp, err := metapb.NewHeartbeatClient(cc).AskLeader(rctx, req, opts...)
			switch {
			case err != nil:
				if rctx.Err() == nil {
					cc.ResetConnectBackoff()
				}
				fail(fmt.Errorf("%s: %w", addr, err))
			case resp.GetLeader() == nil:
				fail(fmt.Errorf("%s: no leader in the answer", addr))
			default:
				winner <- resp.GetLeader().GetAddr()
			}
		})
	}

	var (
		leader string
		won    bool
	)
	select {
	case leader = <-winner:
		won = true
	case <-rctx.Done():
	}
	cancel()
	wg.Wait()
	if won {
		return leader, nil
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	conns.resetBackoff(peers)
	errMu.Lock()
	defer errMu.Unlock()
	return "", fmt.Errorf("greptimefake: ask leader: no leader from %d endpoints within %s: %w", len(peers), timeout, errors.Join(errs...))
}
