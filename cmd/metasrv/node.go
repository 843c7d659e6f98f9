package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"google.golang.org/grpc"

	"github.com/pgmetasrv/metasrv/migrations"
	"github.com/pgmetasrv/metasrv/pkg/config"
	"github.com/pgmetasrv/metasrv/pkg/election"
	"github.com/pgmetasrv/metasrv/pkg/election/pgelection"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/kv/kvmetrics"
	"github.com/pgmetasrv/metasrv/pkg/kv/memkv"
	"github.com/pgmetasrv/metasrv/pkg/kv/pgkv"
	"github.com/pgmetasrv/metasrv/pkg/metasrv"
	"github.com/pgmetasrv/metasrv/pkg/procedure"
	"github.com/pgmetasrv/metasrv/pkg/server"
	"github.com/pgmetasrv/metasrv/pkg/server/admin"
	"github.com/pgmetasrv/metasrv/pkg/server/apierr"
	"github.com/pgmetasrv/metasrv/pkg/server/metasrvapi"
	"github.com/pgmetasrv/metasrv/pkg/server/metrics"
)

// node is one metasrv process put together: the store, the election, the
// core with its leader-only work, and the servers in front of them.
type node struct {
	opts       config.Options
	base       *slog.Logger
	log        *slog.Logger
	pool       *pgxpool.Pool // nil for memory_store
	pg         *pgkv.Store   // nil for memory_store
	batcher    *pgkv.Batcher // group commit of the leader's writes; nil for memory_store
	elector    election.Elector
	procedures *procedure.Manager
	core       *metasrv.Metasrv
	srv        *server.Server
	// early serves the HTTP admin address until the real server starts;
	// nil once stopped (and for memory_store).
	early      *earlyAdmin
	connecting connectState

	addrOnce sync.Once
	addr     string
}

// newNode builds every part; nothing serves until start. For postgres_store
// it waits (with backoff) for PostgreSQL and migrates the schema first.
func newNode(ctx context.Context, o config.Options, base *slog.Logger) (*node, error) {
	n := &node{opts: o, base: base, log: base.With("component", "main")}
	// The servers' TLS files are read before anything connects, so a bad
	// path fails the start at once.
	grpcTLS, err := tlsFiles("grpc.tls", o.GRPC.TLS).ServerConfig(server.RequireClientCerts)
	if err != nil {
		return nil, err
	}
	httpTLS, err := tlsFiles("http.tls", o.HTTP.TLS).ServerConfig(server.VerifyClientCertsIfGiven)
	if err != nil {
		return nil, err
	}
	reg := metrics.NewRegistry()
	kvm, err := kvmetrics.New(reg)
	if err != nil {
		return nil, err
	}
	grpcMetrics, err := metrics.NewGRPC(reg)
	if err != nil {
		return nil, err
	}
	httpAddr := o.HTTP.Addr
	if o.Backend == config.BackendPostgres {
		// Waiting for PostgreSQL can take long (or for ever, with a wrong
		// address): liveness, readiness and /metrics answer meanwhile.
		n.early, err = startEarlyAdmin(ctx, o.HTTP.Addr, httpTLS, reg, n.connecting.get, base.With("component", "http"))
		if err != nil {
			return nil, err
		}
		httpAddr = n.early.addr()
	}
	store, err := n.openStore(ctx)
	if err != nil {
		n.close()
		return nil, err
	}
	if n.pool != nil {
		if err := reg.Register(metrics.NewPoolCollector("kv", n.pool)); err != nil {
			n.close()
			return nil, err
		}
	}
	store = kvm.Wrap(store)
	// memory_store has one node and no term to fence with.
	var fenced func(term int64) kv.Backend
	var settle func(ctx context.Context) error
	build := currentBuild()
	info := election.NewNodeInfoSource("", build.Version, build.Commit, time.Now())
	nodeInfo := func() election.NodeInfo {
		ni := info.Snapshot()
		ni.Addr = n.advertised()
		return ni
	}
	switch o.Backend {
	case config.BackendMemory:
		n.elector = election.NewSingle(nodeInfo, base)
	case config.BackendPostgres:
		el, err := pgelection.New(pgelection.Config{
			Store: o.Store(), Schema: o.MetaSchemaName, Table: o.MetaTableName, LockID: o.MetaElectionLockID, KeyPrefix: o.StoreKeyPrefix,
			Lease: o.Election.Lease, CampaignInterval: o.Election.CampaignInterval, CandidateLease: o.Election.CandidateLease,
			NodeInfo: nodeInfo, NodeName: n.name(), Pool: n.pool, Logger: base})
		if err != nil {
			n.close()
			return nil, err
		}
		n.elector = el
		// Concurrent leader writes share one fenced transaction (group commit).
		n.batcher, err = pgkv.NewBatcher(n.pg, pgkv.BatchOptions{}, base)
		if err != nil {
			n.close()
			return nil, err
		}
		fenced = func(term int64) kv.Backend { return kvm.Wrap(n.batcher.WithFence(el.Fence(term))) }
		settle = el.Settle
	}

	n.procedures = procedure.New(procedure.Options{
		MaxRetryTimes:        o.Procedure.MaxRetryTimes,
		RetryDelay:           o.Procedure.RetryDelay,
		MaxMetadataValueSize: int(o.Procedure.MaxMetadataValueSize),
		MaxRunningProcedures: o.Procedure.MaxRunningProcedures,
		MaxTxnOps:            o.MaxTxnOps,
	}, base)

	var srv *server.Server
	n.core, err = metasrv.New(metasrv.Deps{
		Logger:    base,
		Store:     store,
		Fenced:    fenced,
		Settle:    settle,
		KeyPrefix: []byte(o.StoreKeyPrefix),
		Limits:    kv.Limits{MaxTxnOps: o.MaxTxnOps, MaxValueSize: int(o.Procedure.MaxMetadataValueSize), MaxKeySize: int(o.MaxKeySize)},
		Elector:   n.elector,
		Addr:      n.advertised,
		Listeners: []metasrv.Listener{
			metasrv.ProcedureListener{Manager: n.procedures},
			metasrv.NewNodeExpiryListener(base, o.NodeMaxIdleTime, time.Minute, time.Now),
		},
		OnStateChange: func(s metasrv.State) { srv.SetLeader(s == metasrv.LeaderReady) },
	})
	if err != nil {
		n.close()
		return nil, err
	}
	if err := errors.Join(
		n.core.RegisterMetrics(reg),
		reg.Register(metrics.NewProcedureCollector(n.procedures)),
	); err != nil {
		n.close()
		return nil, err
	}
	glog := base.With("component", "grpc")
	srv = server.New(server.Options{
		GRPCAddr:       o.GRPC.BindAddr,
		HTTPAddr:       httpAddr,
		Logger:         base,
		GRPCTLS:        grpcTLS,
		HTTPTLS:        httpTLS,
		MaxRecvMsgSize: int(o.GRPC.MaxRecvMessageSize),
		MaxSendMsgSize: int(o.GRPC.MaxSendMessageSize),
		// The other request memory bounds keep their defaults (README,
		// "Request size and memory").
		// Health of the leader service is answered from the trust window
		// at the moment of each answer.
		LeaderCheck: n.core.ServingLeader,
		// Metrics first, so they record the code apierr mapped.
		GRPCOptions: []grpc.ServerOption{
			// Reused workers keep their grown stacks: without them every call
			// pays for growing a fresh goroutine's stack (~10% of CPU).
			grpc.NumStreamWorkers(uint32(runtime.GOMAXPROCS(0))),
			grpc.ChainUnaryInterceptor(grpcMetrics.UnaryServerInterceptor(), apierr.UnaryServerInterceptor(glog)),
			grpc.ChainStreamInterceptor(grpcMetrics.StreamServerInterceptor(), apierr.StreamServerInterceptor(glog)),
		},
		Register: func(g *grpc.Server) {
			metasrvapi.Register(g, metasrvapi.Deps{
				Core:            n.core,
				Elector:         n.elector,
				Procedures:      n.procedures,
				MaxResponseSize: int(o.GRPC.MaxSendMessageSize),
			})
		},
	})
	n.srv = srv
	if o.HTTP.AdminToken != "" && httpTLS == nil {
		n.log.Warn("http.admin_token is set but http.tls is not: the token travels in clear text")
	}
	if err := admin.Register(srv.HTTPMux(), admin.Deps{
		Logger:       base,
		Cluster:      n.elector,
		Store:        n.core,
		Procedures:   n.procedures,
		RenderConfig: func() ([]byte, error) { return config.Render(o) },
		Metrics:      reg,
		Auth:         admin.Auth{Token: o.HTTP.AdminToken, ClientCerts: o.HTTP.TLS.CACertPath != ""},
		MaxBodySize:  int64(o.HTTP.BodyLimit),
		Ready:        n.ready,
	}); err != nil {
		n.close()
		return nil, err
	}
	registerPprof(srv.HTTPMux())
	return n, nil
}

// registerPprof serves Go's profiles on the admin address, where an operator
// debugging a slow or stuck node can reach them.
func registerPprof(mux *http.ServeMux) {
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
}

// ready answers /admin/ready: PostgreSQL answers (postgres_store) and a
// leader is known. The reasons name no host: anyone may ask.
func (n *node) ready(ctx context.Context) error {
	if n.pool != nil {
		ctx, cancel := context.WithTimeout(ctx, readyPingTimeout)
		defer cancel()
		if err := n.pool.Ping(ctx); err != nil {
			what, check := connectAdvice(err)
			return fmt.Errorf("PostgreSQL does not answer (%s); check %s; see the server log", what, check)
		}
	}
	if n.core.State() == metasrv.LeaderReady || n.core.LeaderHint() != "" {
		return nil
	}
	return errors.New("no leader is known: an election is under way, or PostgreSQL is unreachable")
}

// readyPingTimeout bounds the PostgreSQL check of one readiness answer.
const readyPingTimeout = 2 * time.Second

// openStorePool connects the pool of postgres_store, waiting while
// PostgreSQL is down until ctx ends. Each failed attempt is logged with
// what the operator should check (adviceHandler).
func openStorePool(ctx context.Context, o config.Options, base *slog.Logger, state *connectState) (*pgxpool.Pool, error) {
	base = slog.New(adviceHandler{Handler: base.Handler(), state: state})
	// A leader frozen or cut off inside a fenced write holds the election
	// row FOR SHARE, which the next leader's term bump waits for: PostgreSQL
	// must end such a transaction well within a lease.
	return openPool(ctx, o, "metasrv", base, map[string]string{
		"idle_in_transaction_session_timeout": strconv.FormatInt(idleInTxTimeout(o.Election.Lease).Milliseconds(), 10),
	})
}

// idleInTxTimeout is half the lease (at least 100ms), so a stuck fenced
// transaction is gone before the new leader's term bump (bounded by the
// lease) gives up.
func idleInTxTimeout(lease time.Duration) time.Duration {
	return max(lease/2, 100*time.Millisecond)
}

func tlsFiles(table string, t config.ServerTLSOptions) server.TLSFiles {
	return server.TLSFiles{Table: table, CertPath: t.CertPath, KeyPath: t.KeyPath, CACertPath: t.CACertPath}
}

// openStore opens the configured durable store. For postgres_store it keeps
// trying while PostgreSQL is down, then applies the migrations.
func (n *node) openStore(ctx context.Context) (kv.Backend, error) {
	o := n.opts
	switch o.Backend {
	case config.BackendMemory:
		n.log.Warn("memory_store keeps metadata in this process only and has no leader election: run exactly one instance, and expect to lose all metadata when it stops")
		return memkv.New(), nil
	case config.BackendPostgres:
		pool, err := openStorePool(ctx, o, n.base, &n.connecting)
		if err != nil {
			return nil, err
		}
		n.pool = pool
		db := stdlib.OpenDBFromPool(pool)
		defer db.Close()
		if err := migrations.Up(ctx, db, o.MetaSchemaName, o.MetaTableName, n.base.With("component", "migrations")); err != nil {
			pool.Close()
			return nil, fmt.Errorf("migrate: %w", err)
		}
		store, err := pgkv.New(pool, pgkv.Options{Schema: o.MetaSchemaName, Table: o.MetaTableName}, n.base)
		if err != nil {
			pool.Close()
			return nil, err
		}
		n.pg = store
		return store, nil
	default:
		return nil, fmt.Errorf("unknown backend %q", o.Backend)
	}
}

// start binds the servers, then joins the election.
func (n *node) start(ctx context.Context) error {
	n.stopEarly()
	if err := n.srv.Start(ctx); err != nil {
		return err
	}
	if n.batcher != nil {
		if err := n.batcher.Start(ctx); err != nil {
			n.srv.Stop()
			return err
		}
	}
	if err := n.core.Start(ctx); err != nil {
		if n.batcher != nil {
			n.batcher.Stop()
		}
		n.srv.Stop()
		return err
	}
	return nil
}

// shutdown resigns and stops leader work first, so a follower takes over
// while this node still drains its in-flight calls.
func (n *node) shutdown(ctx context.Context) error {
	err := n.core.Shutdown(ctx)
	if n.batcher != nil {
		n.batcher.Stop()
	}
	n.srv.Stop()
	return err
}

// stopEarly stops the HTTP admin served while connecting, if it runs.
func (n *node) stopEarly() {
	if n.early != nil {
		n.early.stop()
		n.early = nil
	}
}

// close releases what newNode opened.
func (n *node) close() {
	n.stopEarly()
	if n.pool != nil {
		n.pool.Close()
	}
}

// name tells this node's sessions apart in pg_stat_activity: the advertised
// address when configured, else the bind address (unique per host).
func (n *node) name() string {
	if n.opts.GRPC.ServerAddr != "" {
		return n.opts.GRPC.ServerAddr
	}
	return n.opts.GRPC.BindAddr
}

// advertised is the address peers and clients are told to use:
// grpc.server_addr, else the bound gRPC address, with an unspecified host
// (0.0.0.0, ::) replaced by the hostname.
func (n *node) advertised() string {
	n.addrOnce.Do(func() {
		if n.opts.GRPC.ServerAddr != "" {
			n.addr = n.opts.GRPC.ServerAddr
			return
		}
		if n.srv == nil || n.srv.GRPCAddr() == nil {
			panic("metasrv: advertised address asked for before the gRPC server listens")
		}
		bound := n.srv.GRPCAddr().String()
		host, port, err := net.SplitHostPort(bound)
		if err != nil {
			n.addr = bound
			return
		}
		if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
			if h, err := os.Hostname(); err == nil {
				host = h
			}
		}
		p, _ := strconv.Atoi(port)
		n.addr = net.JoinHostPort(host, strconv.Itoa(p))
	})
	return n.addr
}
