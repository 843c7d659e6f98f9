package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/pgmetasrv/metasrv/pkg/config"
	"github.com/pgmetasrv/metasrv/pkg/election"
	"github.com/pgmetasrv/metasrv/pkg/election/pgelection"
	"github.com/pgmetasrv/metasrv/pkg/kv/kvmetrics"
	"github.com/pgmetasrv/metasrv/pkg/metasrv"
	"github.com/pgmetasrv/metasrv/pkg/procedure"
	"github.com/pgmetasrv/metasrv/pkg/server"
	"github.com/pgmetasrv/metasrv/pkg/server/admin"
	"github.com/pgmetasrv/metasrv/pkg/server/apierr"
	"github.com/pgmetasrv/metasrv/pkg/server/greptimeapi"
	"github.com/pgmetasrv/metasrv/pkg/server/metasrvapi"
	"github.com/pgmetasrv/metasrv/pkg/server/metrics"
)

// streamWorkers is the size of the gRPC server's pool of call goroutines:
// about the calls in flight under a heavy load (see buildServer).
const streamWorkers = 64

// parts are what New makes before anything connects: TLS (so a bad path
// fails at once) and the metrics registry with its collectors.
type parts struct {
	grpcTLS, httpTLS *tls.Config
	reg              *prometheus.Registry
	kvm              *kvmetrics.Metrics
	grpcMetrics      *metrics.GRPC
}

func newParts(o config.Options) (*parts, error) {
	p := &parts{reg: metrics.NewRegistry()}
	var err error
	if p.grpcTLS, err = tlsFiles("grpc.tls", o.GRPC.TLS).ServerConfig(server.RequireClientCerts); err != nil {
		return nil, err
	}
	if p.httpTLS, err = tlsFiles("http.tls", o.HTTP.TLS).ServerConfig(server.VerifyClientCertsIfGiven); err != nil {
		return nil, err
	}
	if p.kvm, err = kvmetrics.New(p.reg); err != nil {
		return nil, fmt.Errorf("node: metrics: %w", err)
	}
	if p.grpcMetrics, err = metrics.NewGRPC(p.reg); err != nil {
		return nil, fmt.Errorf("node: metrics: %w", err)
	}
	return p, nil
}

func tlsFiles(table string, t config.ServerTLSOptions) server.TLSFiles {
	return server.TLSFiles{Table: table, CertPath: t.CertPath, KeyPath: t.KeyPath, CACertPath: t.CACertPath}
}

// openKV opens the durable store, joins (not yet starts) the election and
// layers the key-value path on them.
func (n *Node) openKV(ctx context.Context, p *parts) (kvStack, error) {
	durable, pg, err := n.openStore(ctx)
	if err != nil {
		return kvStack{}, err
	}
	var el *pgelection.Elector
	switch n.opts.Backend {
	case config.BackendMemory:
		n.elector = election.NewSingle(n.nodeInfo(), n.base)
	case config.BackendPostgres:
		if err := p.reg.Register(metrics.NewPoolCollector("kv", n.pool)); err != nil {
			return kvStack{}, fmt.Errorf("node: metrics: %w", err)
		}
		o := n.opts
		el, err = pgelection.New(pgelection.Config{
			Store: o.Store(), Schema: o.MetaSchemaName, Table: o.MetaTableName, LockID: o.MetaElectionLockID, KeyPrefix: o.StoreKeyPrefix,
			Lease: o.Election.Lease, CampaignInterval: o.Election.CampaignInterval, CandidateLease: o.Election.CandidateLease,
			NodeInfo: n.nodeInfo(), NodeName: n.name(), Pool: n.pool, Logger: n.base})
		if err != nil {
			return kvStack{}, fmt.Errorf("node: election: %w", err)
		}
		n.elector = el
	}
	stack, err := newKVStack(n.opts, durable, pg, el, p.kvm, n.base)
	if err != nil {
		return kvStack{}, err
	}
	n.batcher = stack.batcher
	return stack, nil
}

// nodeInfo is the election record of this node, under its advertised
// address (known since bind).
func (n *Node) nodeInfo() func() election.NodeInfo {
	return election.NewNodeInfoSource(n.advertised, n.version, n.commit, time.Now()).Snapshot
}

// buildCore makes the procedure manager and the core with its leader-only
// work, and registers their metrics.
func (n *Node) buildCore(cfg Config, p *parts, stack kvStack) error {
	o := n.opts
	n.procedures = procedure.New(procedure.Options{
		MaxRetryTimes:        o.Procedure.MaxRetryTimes,
		RetryDelay:           o.Procedure.RetryDelay,
		MaxMetadataValueSize: int(o.Procedure.MaxMetadataValueSize),
		MaxRunningProcedures: o.Procedure.MaxRunningProcedures,
		MaxTxnOps:            o.MaxTxnOps,
	}, n.base)
	for name, load := range cfg.ProcedureLoaders {
		if err := n.procedures.RegisterLoader(name, load); err != nil {
			return fmt.Errorf("node: procedure type %q: %w", name, err)
		}
	}
	g, err := n.buildGreptime()
	if err != nil {
		return err
	}
	d := metasrv.Deps{
		Logger:    n.base,
		Elector:   n.elector,
		Addr:      func() string { return n.advertised },
		Listeners: g.listeners(n, metasrv.NewNodeExpiryListener(n.base, o.NodeMaxIdleTime, time.Minute, time.Now)),
		// n.srv is set before Start, and states change only after it.
		OnStateChange: func(s metasrv.State) {
			n.srv.SetLeader(s == metasrv.LeaderReady)
			n.states.set(s)
		},
	}
	stack.into(&d)
	if n.core, err = metasrv.New(d); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	if err := errors.Join(
		n.core.RegisterMetrics(p.reg),
		n.heartbeats.RegisterMetrics(p.reg),
		g.registerMetrics(p.reg),
		p.reg.Register(metrics.NewProcedureCollector(n.procedures)),
	); err != nil {
		return fmt.Errorf("node: metrics: %w", err)
	}
	return nil
}

// buildServer makes the gRPC server with its services and interceptors and
// the HTTP admin server with its routes.
func (n *Node) buildServer(p *parts) error {
	o := n.opts
	glog := n.base.With("component", "grpc")
	n.peers = newPeerConns(p.grpcTLS)
	n.srv = server.New(server.Options{
		GRPCAddr:       n.grpcAddr.String(),
		HTTPAddr:       n.httpAddr.String(),
		GRPCListener:   n.grpcHold,
		HTTPListener:   n.httpHold,
		Logger:         n.base,
		GRPCTLS:        p.grpcTLS,
		HTTPTLS:        p.httpTLS,
		MaxRecvMsgSize: int(o.GRPC.MaxRecvMessageSize),
		MaxSendMsgSize: int(o.GRPC.MaxSendMessageSize),
		// The other request memory bounds keep their defaults (README,
		// "Request size and memory").
		// Health of the leader service is answered from the trust window
		// at the moment of each answer.
		LeaderCheck: n.core.ServingLeader,
		GRPCOptions: []grpc.ServerOption{
			// Reused workers keep their grown stacks: a fresh goroutine per
			// call grows its stack at every call (10-15% of the server's CPU
			// under load). gRPC hands a call to the longest-idle worker, and
			// the collector halves the stack of every worker it finds idle,
			// so a pool much larger than the calls in flight grows stacks
			// again: measured under 64 clients, stack growth took 15.6% of
			// the CPU with GOMAXPROCS (2) workers, 5% with 64, 10% with 256
			// and 14% with 512 (docs/benchmarks.md). A call beyond the pool,
			// and every long-lived stream once the pool is taken, gets a
			// goroutine of its own.
			grpc.NumStreamWorkers(streamWorkers),
			// Metrics first, so they record the code apierr mapped.
			grpc.ChainUnaryInterceptor(p.grpcMetrics.UnaryServerInterceptor(), apierr.UnaryServerInterceptor(glog)),
			grpc.ChainStreamInterceptor(p.grpcMetrics.StreamServerInterceptor(), apierr.StreamServerInterceptor(glog)),
		},
		Register: func(g grpc.ServiceRegistrar) {
			metasrvapi.Register(g, metasrvapi.Deps{
				Core:            n.core,
				Elector:         n.elector,
				Procedures:      n.procedures,
				MaxResponseSize: int(o.GRPC.MaxSendMessageSize),
			})
			greptimeapi.Register(g, greptimeapi.Deps{
				Core:       n.core,
				Elector:    n.elector,
				Heartbeat:  n.heartbeats,
				Forward:    n.peers.store,
				DDL:        n.ddl,
				Procedures: n.procedures,
				Migrations: n.migrations,
			})
		},
	})
	if o.HTTP.AdminToken != "" && p.httpTLS == nil {
		n.log.Warn("http.admin_token is set but http.tls is not: the token travels in clear text")
	}
	if err := admin.Register(n.srv.HTTPMux(), admin.Deps{
		Logger:       n.base,
		Cluster:      n.elector,
		Store:        n.core,
		Procedures:   n.procedures,
		RenderConfig: func() ([]byte, error) { return config.Render(o) },
		Metrics:      p.reg,
		Auth:         admin.Auth{Token: o.HTTP.AdminToken, ClientCerts: o.HTTP.TLS.CACertPath != ""},
		MaxBodySize:  int64(o.HTTP.BodyLimit),
		Ready:        n.readyCheck,
		// GET /admin/nodes: the GreptimeDB nodes in the leader's in-memory KV.
		Memory:            n.core,
		Migrations:        n.migrations,
		HeartbeatInterval: o.HeartbeatInterval,
	}); err != nil {
		return fmt.Errorf("node: admin: %w", err)
	}
	registerPprof(n.srv.HTTPMux())
	return nil
}
