// Package netproxy is a TCP proxy that can cut the network between its
// clients and its upstream the way a real partition does: silently. It is
// used to partition a metasrv node from PostgreSQL in the failover benchmark
// and the fault suite.
//
// Unlike toxiproxy's timeout toxic, a partitioned Proxy does not pass a close
// from one side on to the other: PostgreSQL sees a client that went silent
// and the client sees a server that went silent, and each side must find out
// through its own timeouts and keepalives.
package netproxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Proxy forwards TCP connections from its listen address to one upstream.
type Proxy struct {
	ln       net.Listener
	network  string
	upstream string
	logger   *slog.Logger
	dialer   net.Dialer

	mu          sync.Mutex
	partitioned bool
	closed      bool
	conns       map[net.Conn]*pair
	wg          sync.WaitGroup
}

// pair is one proxied connection. Once a partition has dropped any of its
// bytes it is cut for good: forwarding later bytes of the same stream would
// be something no real network does.
type pair struct {
	cut atomic.Bool
}

// Start listens on listenAddr (host:port; port 0 picks a free one) and
// forwards every accepted connection to upstream, dialled with network "tcp"
// or "unix". It returns once listening.
func Start(ctx context.Context, listenAddr, network, upstream string, logger *slog.Logger) (*Proxy, error) {
	if network != "tcp" && network != "unix" {
		return nil, fmt.Errorf("netproxy: upstream network %q: expected tcp or unix", network)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", listenAddr)
	if err != nil {
		return nil, fmt.Errorf("netproxy: listen on %s: %w", listenAddr, err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	p := &Proxy{
		ln:       ln,
		network:  network,
		upstream: upstream,
		logger:   logger.With("component", "netproxy", "listen", ln.Addr().String()),
		dialer:   net.Dialer{Timeout: 5 * time.Second},
		conns:    map[net.Conn]*pair{},
	}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the address clients connect to.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Partition starts dropping every byte in both directions, on the open
// connections and on new ones; new connections are still accepted (a
// partitioned peer's SYN would time out, but a silent accepted socket shows
// the client the same thing: no answer).
func (p *Proxy) Partition() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.partitioned = true
	for _, pr := range p.conns {
		pr.cut.Store(true)
	}
}

// Heal ends a partition. Connections that lived through it are closed, both
// ends: bytes were dropped mid-stream, so they can never be used again, just
// as after a real partition long enough for TCP to give up.
func (p *Proxy) Heal() {
	p.mu.Lock()
	conns := p.conns
	p.conns = map[net.Conn]*pair{}
	p.partitioned = false
	p.mu.Unlock()
	for c := range conns {
		c.Close()
	}
}

// Partitioned reports whether traffic is being dropped.
func (p *Proxy) Partitioned() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.partitioned
}

// Close stops listening and closes every connection. Safe to call twice.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	conns := p.conns
	p.conns = nil
	p.mu.Unlock()
	err := p.ln.Close()
	for c := range conns {
		c.Close()
	}
	p.wg.Wait()
	return err
}

// track registers both ends of a new pair; nil when the proxy closed. A pair
// born during a partition is cut from the start.
func (p *Proxy) track(a, b net.Conn) *pair {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	pr := &pair{}
	pr.cut.Store(p.partitioned)
	p.conns[a] = pr
	p.conns[b] = pr
	return pr
}

func (p *Proxy) untrack(a, b net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.conns, a)
	delete(p.conns, b)
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				p.logger.Warn("accept failed; proxy stops", "err", err)
			}
			return
		}
		server, err := p.dialer.Dial(p.network, p.upstream)
		if err != nil {
			p.logger.Debug("dial upstream failed", "upstream", p.upstream, "err", err)
			client.Close()
			continue
		}
		pr := p.track(client, server)
		if pr == nil {
			client.Close()
			server.Close()
			return
		}
		p.wg.Add(1)
		go p.serve(client, server, pr)
	}
}

// serve runs one connection pair until both directions end.
func (p *Proxy) serve(client, server net.Conn, pr *pair) {
	defer p.wg.Done()
	var both sync.WaitGroup
	both.Add(2)
	go func() { defer both.Done(); p.pipe(client, server, pr) }()
	go func() { defer both.Done(); p.pipe(server, client, pr) }()
	both.Wait()
	p.untrack(client, server)
	client.Close()
	server.Close()
}

// pipe copies src to dst until src ends. While partitioned it reads and
// drops, and an end of src is not passed on: the far side must find out by
// itself. Outside a partition, an end of src closes dst, so the other pipe
// ends too.
func (p *Proxy) pipe(src, dst net.Conn, pr *pair) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		// Checked after the read: bytes read while a partition began are
		// dropped, and so is everything after them on this pair.
		if n > 0 && !pr.cut.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				src.Close()
				return
			}
		}
		if err != nil {
			if !pr.cut.Load() {
				dst.Close()
			}
			return
		}
	}
}
