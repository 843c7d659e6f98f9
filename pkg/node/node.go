package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgmetasrv/metasrv/pkg/config"
	"github.com/pgmetasrv/metasrv/pkg/ddl"
	"github.com/pgmetasrv/metasrv/pkg/election"
	"github.com/pgmetasrv/metasrv/pkg/heartbeat"
	"github.com/pgmetasrv/metasrv/pkg/kv/pgkv"
	"github.com/pgmetasrv/metasrv/pkg/metasrv"
	"github.com/pgmetasrv/metasrv/pkg/migration"
	"github.com/pgmetasrv/metasrv/pkg/procedure"
	"github.com/pgmetasrv/metasrv/pkg/regionclient"
	"github.com/pgmetasrv/metasrv/pkg/server"
)

// Config is what New needs to build a node.
type Config struct {
	// Options is the node's configuration; New validates it.
	Options config.Options
	// Logger receives every component's logs (each adds its "component"
	// attribute); nil discards them.
	Logger *slog.Logger
	// Version and Commit describe the running build in the node's election
	// record (what `metasrv ctl cluster members` shows); empty means unknown.
	Version, Commit string
	// ProcedureLoaders registers further procedure types on the node's
	// procedure manager, by type name.
	ProcedureLoaders map[string]procedure.Loader
}

// hardStopWait is how long Stop waits for the core once more, after its
// context ended and the batcher and servers were stopped under it.
const hardStopWait = 5 * time.Second

// Node is one metasrv node. Build it with New, then Start and Stop it.
type Node struct {
	opts            config.Options
	version, commit string
	base            *slog.Logger
	log             *slog.Logger

	// Bound by New: the addresses are fixed from then on.
	grpcAddr, httpAddr net.Addr
	advertised         string
	grpcHold, httpHold net.Listener // bound by New; the server owns them from Start
	early              *earlyAdmin  // serves httpHold meanwhile, for postgres_store
	connecting         connectState

	pool       *pgxpool.Pool // nil for memory_store
	batcher    *pgkv.Batcher // nil for memory_store
	elector    election.Elector
	procedures *procedure.Manager
	core       *metasrv.Metasrv
	heartbeats *heartbeat.Service
	ddl        *ddl.Service
	migrations *migration.Manager
	regions    *regionclient.Client // to datanodes, for DDL
	peers      *peerConns           // to the leader, for forwarded writes
	srv        *server.Server

	ready  chan struct{}
	states *stateWatch

	mu      sync.Mutex
	started bool // Start was called
	serving bool // Start succeeded
	stopped bool
	stopErr error
}

// New builds a node and binds its addresses; nothing is served until Start
// (but for postgres_store's early admin, see the package documentation). ctx
// bounds the wait for PostgreSQL and the migrations.
func New(ctx context.Context, cfg Config) (_ *Node, err error) {
	o := cfg.Options
	if err := o.Validate(); err != nil {
		return nil, err
	}
	base := cfg.Logger
	if base == nil {
		base = slog.New(slog.DiscardHandler)
	}
	n := &Node{opts: o, version: cfg.Version, commit: cfg.Commit, base: base, log: base.With("component", "node"),
		ready: make(chan struct{}), states: newStateWatch()}
	defer func() {
		if err != nil {
			n.release()
		}
	}()
	p, err := newParts(o)
	if err != nil {
		return nil, err
	}
	if err := n.bind(ctx, p); err != nil {
		return nil, err
	}
	stack, err := n.openKV(ctx, p)
	if err != nil {
		return nil, err
	}
	if err := n.buildCore(cfg, p, stack); err != nil {
		return nil, err
	}
	if err := n.buildServer(p); err != nil {
		return nil, err
	}
	return n, nil
}

// bind reserves the gRPC address and the HTTP admin address (for
// postgres_store by serving the early admin on it) and fixes the advertised
// address.
func (n *Node) bind(ctx context.Context, p *parts) error {
	var lc net.ListenConfig
	g, err := lc.Listen(ctx, "tcp", n.opts.GRPC.BindAddr)
	if err != nil {
		return fmt.Errorf("node: gRPC listen on %s: %w", n.opts.GRPC.BindAddr, err)
	}
	n.grpcHold, n.grpcAddr = g, g.Addr()
	n.advertised = advertise(n.opts.GRPC.ServerAddr, n.grpcAddr)
	h, err := lc.Listen(ctx, "tcp", n.opts.HTTP.Addr)
	if err != nil {
		return fmt.Errorf("node: HTTP listen on %s: %w", n.opts.HTTP.Addr, err)
	}
	n.httpHold, n.httpAddr = h, h.Addr()
	if n.opts.Backend == config.BackendPostgres {
		// Waiting for PostgreSQL can take long (or for ever, with a wrong
		// address): liveness, readiness and /metrics answer meanwhile.
		n.early = startEarlyAdmin(h, p.httpTLS, p.reg, n.connecting.get, n.base.With("component", "http"))
	}
	return nil
}

// Start serves: the servers bind the addresses New reserved, the batcher
// and the core start, and ReadyNotify's channel is closed. On failure what
// Start started is stopped again; Stop releases the rest.
func (n *Node) Start(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stopped {
		return errors.New("node: stopped")
	}
	if n.started {
		return errors.New("node: already started")
	}
	n.started = true
	n.stopEarly()
	// The server owns the listeners from here, whatever Start returns.
	n.grpcHold, n.httpHold = nil, nil
	if err := n.srv.Start(ctx); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	if n.batcher != nil {
		if err := n.batcher.Start(ctx); err != nil {
			n.srv.Stop()
			return fmt.Errorf("node: %w", err)
		}
	}
	if err := n.core.Start(ctx); err != nil {
		if n.batcher != nil {
			n.batcher.Stop()
		}
		n.srv.Stop()
		return fmt.Errorf("node: %w", err)
	}
	n.serving = true
	close(n.ready)
	n.log.Info("node serving", "grpc_addr", n.grpcAddr.String(), "server_addr", n.advertised, "http_addr", n.httpAddr.String())
	return nil
}

// ReadyNotify is closed once Start has succeeded and the node serves.
func (n *Node) ReadyNotify() <-chan struct{} { return n.ready }

// Err delivers an error if a server stops serving on its own (not through
// Stop); the node should then be stopped.
func (n *Node) Err() <-chan error { return n.srv.Failed() }

// Stop shuts the node down: gracefully within ctx (resign, stop leader work),
// then hard (see the package documentation). Safe before Start and more than
// once; later calls return the first call's result.
func (n *Node) Stop(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stopped {
		return n.stopErr
	}
	n.stopped = true
	var err error
	coreDone := true
	// A failed Start has already undone what it started.
	if n.serving {
		err = n.core.Stop(ctx)
		if n.batcher != nil {
			n.batcher.Stop()
		}
		n.srv.Stop()
		if err != nil {
			hard, cancel := context.WithTimeout(context.WithoutCancel(ctx), hardStopWait)
			coreDone = n.core.Stop(hard) == nil
			cancel()
		}
	}
	if coreDone {
		n.release()
	} else {
		n.stopEarly()
		n.log.Error("leader work did not stop; the PostgreSQL pool is left open")
	}
	if err != nil {
		err = fmt.Errorf("node: stop: %w", err)
	}
	n.stopErr = err
	return err
}

// stopEarly stops the early admin, leaving its listener open.
func (n *Node) stopEarly() {
	if n.early != nil {
		n.early.stop()
		n.early = nil
	}
}

// unbind closes the listeners the server has not taken over.
func (n *Node) unbind() {
	n.stopEarly()
	for _, l := range []*net.Listener{&n.grpcHold, &n.httpHold} {
		if *l != nil {
			_ = (*l).Close()
			*l = nil
		}
	}
}

// release closes whatever New opened: the reservations and the pool.
func (n *Node) release() {
	n.unbind()
	if n.srv != nil {
		n.srv.Stop() // safe before Start: frees the gRPC server
	}
	if n.peers != nil {
		n.peers.close()
	}
	if n.regions != nil {
		n.regions.Close()
	}
	if n.pool != nil {
		n.pool.Close()
		n.pool = nil
	}
}

// GRPCAddr is the bound gRPC address (port 0 resolved).
func (n *Node) GRPCAddr() net.Addr { return n.grpcAddr }

// HTTPAddr is the bound HTTP admin address (port 0 resolved).
func (n *Node) HTTPAddr() net.Addr { return n.httpAddr }

// Advertised is the address peers and clients are told to use:
// grpc.server_addr, else the bound gRPC address with an unspecified host
// (0.0.0.0, ::) replaced by the hostname.
func (n *Node) Advertised() string { return n.advertised }

// State is where the node stands in the election.
func (n *Node) State() metasrv.State { return n.core.State() }

func advertise(serverAddr string, bound net.Addr) string {
	if serverAddr != "" {
		return serverAddr
	}
	s := bound.String()
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return s
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		if h, err := os.Hostname(); err == nil {
			host = h
		}
	}
	p, _ := strconv.Atoi(port)
	return net.JoinHostPort(host, strconv.Itoa(p))
}

// name tells this node's sessions apart in pg_stat_activity: the advertised
// address when configured, else the bind address (unique per host).
func (n *Node) name() string {
	if n.opts.GRPC.ServerAddr != "" {
		return n.opts.GRPC.ServerAddr
	}
	return n.opts.GRPC.BindAddr
}
