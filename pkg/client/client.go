// Package client is the Go client of a metasrv cluster. It takes the
// addresses of some metasrv nodes, finds the leader, follows NOT_LEADER
// hints, and retries calls across a leader change where that is safe. Its
// exported API uses Go types only: the key-value types of package kv, and
// the cluster and procedure types defined here.
//
// Retry rules. A call is made of attempts, each on one node and each bounded
// by Config.AttemptTimeout (never beyond the caller's deadline). Reads are
// retried on any transient failure. A write is re-sent only when it was
// certainly not executed: the node refused it (NOT_LEADER, fenced, no leader,
// backend unavailable before applying) or the connection could not be
// established before sending. A write whose connection broke after it was
// sent, or that got no answer within its attempt, fails with an error
// matching kv.ErrOutcomeUnknown: it may or may not have been applied, and
// re-sending it blindly could apply it twice.
//
// A node that does not answer an attempt in time, or whose connection fails,
// is no longer trusted as the leader, for reads and writes alike: the next
// attempt (a read's retry, or the caller's next call) asks the endpoints who
// leads now instead of waiting on it again. A leader that is frozen or cut
// off therefore costs a caller at most one attempt timeout beyond the
// election of its successor.
package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	metasrvv1 "github.com/pgmetasrv/metasrv/pkg/api/metasrv/v1"
)

// Config configures a Client. Zero durations take the defaults below.
type Config struct {
	// Endpoints are metasrv gRPC addresses (host:port); any subset of the
	// cluster works, the leader is found from them.
	Endpoints []string
	// DialTimeout bounds connecting to one node (default 5s).
	DialTimeout time.Duration
	// RequestTimeout bounds one call, retries included, when ctx carries no
	// deadline (default 10s). A deadline on ctx always wins.
	RequestTimeout time.Duration
	// AttemptTimeout bounds one attempt of a call on one node, from sending
	// to the answer; connecting first is bounded by DialTimeout. It must be
	// shorter than RequestTimeout, so a call outlives a node that stopped
	// answering, and longer than the slowest answer a healthy node gives
	// (the largest Range the caller makes). The default, 1s, is a third of
	// the default election lease (3s), the leader's renewal interval: a
	// leader silent for that long is likely frozen or cut off from
	// PostgreSQL, and giving up on it then keeps a failover seen by the
	// client within lease + 1s. When RequestTimeout is 1s or less the
	// default is half of it.
	AttemptTimeout time.Duration
	// TLS enables TLS with this configuration; nil means plaintext.
	TLS *tls.Config
	// MinRetryBackoff and MaxRetryBackoff bound the jittered exponential
	// pause between attempts (defaults 20ms and 1s).
	MinRetryBackoff time.Duration
	MaxRetryBackoff time.Duration
	// MaxRecvMsgSize caps one response in bytes (default 64 MiB), so large
	// ranges fit.
	MaxRecvMsgSize int
	// ClientID is sent in every request header, for the servers' logs.
	ClientID string
}

const (
	defaultDialTimeout     = 5 * time.Second
	defaultRequestTimeout  = 10 * time.Second
	defaultAttemptTimeout  = time.Second
	defaultMinRetryBackoff = 20 * time.Millisecond
	defaultMaxRetryBackoff = time.Second
	defaultMaxRecvMsgSize  = 64 << 20
)

func (c Config) withDefaults() Config {
	if c.DialTimeout <= 0 {
		c.DialTimeout = defaultDialTimeout
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = defaultRequestTimeout
	}
	if c.AttemptTimeout <= 0 {
		c.AttemptTimeout = defaultAttemptTimeout
		if c.AttemptTimeout >= c.RequestTimeout {
			c.AttemptTimeout = c.RequestTimeout / 2
		}
	}
	if c.MinRetryBackoff <= 0 {
		c.MinRetryBackoff = defaultMinRetryBackoff
	}
	if c.MaxRetryBackoff <= 0 {
		c.MaxRetryBackoff = defaultMaxRetryBackoff
	}
	c.MaxRetryBackoff = max(c.MaxRetryBackoff, c.MinRetryBackoff)
	if c.MaxRecvMsgSize <= 0 {
		c.MaxRecvMsgSize = defaultMaxRecvMsgSize
	}
	return c
}

// ErrClosed is returned by calls made after Close.
var ErrClosed = errors.New("client: closed")

// Client talks to a metasrv cluster. It is safe for concurrent use.
type Client struct {
	cfg       Config
	logger    *slog.Logger
	reqHeader *metasrvv1.RequestHeader
	bg        sync.WaitGroup  // discovery goroutines, awaited by Close
	life      context.Context // ends at Close; bounds background work
	stop      context.CancelFunc

	mu     sync.Mutex
	closed bool
	conns  map[string]*grpc.ClientConn
	leader string // "" when unknown
	term   int64  // term of leader when learned from a server; 0 unknown
	next   int    // round-robin position for serializable reads
	// inflight is the discovery round running now, if any.
	inflight *discovery
}

// New returns a client for the cluster behind cfg.Endpoints. It finds the
// leader before returning, bounded by ctx and cfg.DialTimeout, and fails
// only when no endpoint answered at all; a cluster that is reachable but has
// no leader yet is fine (calls wait for one, within their deadline).
func New(ctx context.Context, cfg Config, logger *slog.Logger) (*Client, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("client: at least one endpoint is required")
	}
	for i, e := range cfg.Endpoints {
		if e == "" {
			return nil, fmt.Errorf("client: endpoints[%d] is empty, want host:port", i)
		}
	}
	cfg = cfg.withDefaults()
	if cfg.AttemptTimeout >= cfg.RequestTimeout {
		// One attempt would use the whole budget: a node that stopped
		// answering could never be left for another.
		return nil, fmt.Errorf("client: attempt timeout %s must be shorter than request timeout %s", cfg.AttemptTimeout, cfg.RequestTimeout)
	}
	cfg.Endpoints = append([]string(nil), cfg.Endpoints...)
	c := &Client{
		cfg:    cfg,
		logger: logger.With("component", "metasrv_client"),
		conns:  make(map[string]*grpc.ClientConn),
	}
	c.life, c.stop = context.WithCancel(context.Background())
	if cfg.ClientID != "" {
		c.reqHeader = &metasrvv1.RequestHeader{ClientId: []byte(cfg.ClientID)}
	}
	for _, e := range cfg.Endpoints {
		if _, err := c.conn(e); err != nil {
			c.Close()
			return nil, err
		}
	}
	if _, err := c.discover(ctx); err != nil && !isRetryable(err) {
		c.Close()
		return nil, fmt.Errorf("client: no endpoint of %v answered: %w", cfg.Endpoints, err)
	}
	return c, nil
}

// Close closes every connection. Calls in flight fail; later calls return
// ErrClosed. Safe to call more than once.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	conns := c.conns
	c.conns = nil
	c.mu.Unlock()
	c.stop()
	var errs []error
	for addr, cc := range conns {
		if err := cc.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close connection to %s: %w", addr, err))
		}
	}
	c.bg.Wait()
	return errors.Join(errs...)
}

// conn returns the connection to addr, creating it on first use (leader
// hints can name nodes that are not in the endpoint list).
func (c *Client) conn(addr string) (*grpc.ClientConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	if cc, ok := c.conns[addr]; ok {
		return cc, nil
	}
	creds := insecure.NewCredentials()
	if c.cfg.TLS != nil {
		creds = credentials.NewTLS(c.cfg.TLS)
	}
	cc, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(creds),
		// gRPC's default reconnect backoff grows to two minutes; a metasrv
		// node that restarts must be usable again within a second or two.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second},
			MinConnectTimeout: c.cfg.DialTimeout,
		}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(c.cfg.MaxRecvMsgSize)),
	)
	if err != nil {
		return nil, fmt.Errorf("client: endpoint %q: %w", addr, err)
	}
	c.conns[addr] = cc
	return cc, nil
}

// cachedLeader returns the leader the client believes in, or "".
func (c *Client) cachedLeader() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.leader
}

// setLeader records a leader learned from a hint (term 0: unknown) or from a
// server's answer. A known term never goes backwards.
func (c *Client) setLeader(addr string, term int64) {
	if addr == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if term != 0 && term < c.term {
		return
	}
	if c.leader != addr {
		c.logger.Debug("leader changed", "leader", addr, "term", term, "previous", c.leader)
	}
	c.leader = addr
	if term != 0 {
		c.term = term
	}
}

// forgetLeader drops addr as the leader, so the next call rediscovers.
func (c *Client) forgetLeader(addr string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.leader == addr {
		c.leader = ""
	}
}

// observe learns from a response header: a newer term names a newer leader.
func (c *Client) observe(h *metasrvv1.ResponseHeader) {
	if h.GetLeaderAddr() == "" || h.GetTerm() == 0 {
		return
	}
	c.mu.Lock()
	newer := h.GetTerm() > c.term
	c.mu.Unlock()
	if newer {
		c.setLeader(h.GetLeaderAddr(), h.GetTerm())
	}
}

// nextEndpoint picks the endpoint for a call any node can serve, rotating so
// the load spreads and a dead endpoint is skipped on retry.
func (c *Client) nextEndpoint() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.cfg.Endpoints[c.next%len(c.cfg.Endpoints)]
	c.next++
	return e
}
