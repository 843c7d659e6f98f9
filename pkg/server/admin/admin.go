// Package admin is metasrv's HTTP admin API: who leads, the members, the
// GreptimeDB nodes registered with the leader, the maintenance switch, the
// procedure manager's status and pause switch, the sanitised configuration,
// and the Prometheus metrics.
//
// Handlers answer JSON errors as {"error": "..."}, 405 with an Allow header
// for a wrong method, and 413 for a body over the limit. A failure of the
// store, the election or the procedure manager gets the HTTP status that
// package apierr's map (the one the gRPC API answers from) gives it, and adds
// "code" (the gRPC code name, e.g. "UNAVAILABLE"), "reason" (the metasrv
// ErrorInfo reason, e.g. "NOT_LEADER") when any, and "leader" when the
// request must go to the leader and it is known.
//
// Authorisation of the POST endpoints (the ones that change something):
//   - http.admin_token set: a POST needs "Authorization: Bearer <token>" or a
//     TLS client certificate verified against http.tls.ca_cert_path; else 401.
//   - no token, but http.tls.ca_cert_path set: a POST needs a verified client
//     certificate; else 401.
//   - neither: POSTs are open (as in GreptimeDB); Register logs a warning, and
//     the address should then be reachable by operators only.
//
// GET endpoints never need credentials: load balancers and Prometheus must
// reach /admin/health, /admin/leader and /metrics, and /admin/config is
// sanitised.
package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pgmetasrv/metasrv/pkg/election"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/procedure"
)

// Defaults for zero Deps fields.
const (
	DefaultMaxBodySize    = 1 << 20
	DefaultRequestTimeout = 10 * time.Second
)

// Cluster tells who leads and who is live; election.Elector satisfies it.
type Cluster interface {
	// Leader reports the current leader, or an error wrapping
	// election.ErrNoLeader.
	Leader(ctx context.Context) (election.Leader, error)
	// Candidates lists the node info of every live node.
	Candidates(ctx context.Context) ([]election.NodeInfo, error)
}

// Store gives the metadata store; *metasrv.Metasrv satisfies it.
type Store interface {
	// LeaderBackend is the leader's store (reads linearizable, writes fenced);
	// it fails with an *election.NotLeaderError on a follower.
	LeaderBackend(ctx context.Context) (kv.Backend, error)
	// SerializableBackend reads the durable store directly, on any node.
	SerializableBackend() kv.Backend
}

// Procedures controls the procedure manager; *procedure.Manager satisfies it.
// Pause, Resume and Paused fail with procedure.ErrNotRunning where the
// manager does not run (on a follower).
type Procedures interface {
	Pause(ctx context.Context) error
	Resume(ctx context.Context) error
	Paused(ctx context.Context) (bool, error)
	Stats() procedure.Stats
}

// Auth says who may call the POST endpoints (see the package comment).
type Auth struct {
	// Token is http.admin_token; empty means bearer tokens are not accepted.
	Token string
	// ClientCerts is true when the HTTP server verifies client certificates
	// (http.tls.ca_cert_path is set); a verified certificate then authorises.
	ClientCerts bool
}

func (a Auth) open() bool { return a.Token == "" && !a.ClientCerts }

// Deps are what the admin API is built from. Every field is required unless
// marked otherwise.
type Deps struct {
	Logger     *slog.Logger
	Cluster    Cluster
	Store      Store
	Procedures Procedures
	// RenderConfig returns the sanitised configuration as TOML (config.Render).
	RenderConfig func() ([]byte, error)
	// Metrics is the registry served on /metrics.
	Metrics prometheus.Gatherer
	Auth    Auth
	// MaxBodySize caps a request body (http.body_limit); zero means
	// DefaultMaxBodySize.
	MaxBodySize int64
	// RequestTimeout bounds the work of one request (a store read or write);
	// zero means DefaultRequestTimeout.
	RequestTimeout time.Duration
	// Ready, optional, answers GET /admin/ready: nil when the node can
	// serve, else an error saying why not (it is shown to any caller: no
	// internal host names). Nil means "ready when a leader is known".
	Ready func(ctx context.Context) error
	// Memory, optional, answers GET /admin/nodes from the leader's
	// in-memory KV; nil answers it 501.
	Memory Memory
	// HeartbeatInterval is heartbeat_interval, which the GreptimeDB nodes'
	// leases follow from; zero means client.DefaultHeartbeatInterval.
	HeartbeatInterval time.Duration
	// Migrations, optional, answers GET /admin/migrations; nil answers it 501.
	Migrations Migrations
}

// errNoLeaderKnown is the default readiness failure.
var errNoLeaderKnown = errors.New("no leader is known: an election is under way, or PostgreSQL is unreachable")

type handlers struct {
	log     *slog.Logger
	cluster Cluster
	store   Store
	procs   Procedures
	render  func() ([]byte, error)
	auth    Auth
	maxBody int64
	timeout time.Duration
	// readiness answers GET /admin/ready.
	readiness func(ctx context.Context) error
}

type route struct {
	method  string
	path    string
	handler http.HandlerFunc
}

// Register adds the admin endpoints, GET /admin/ready and /metrics to mux.
// GET /admin/health is the server's own (package server) and is not
// registered here; its wrong methods are.
func Register(mux *http.ServeMux, d Deps) error {
	if d.Logger == nil || d.Cluster == nil || d.Store == nil || d.Procedures == nil || d.RenderConfig == nil || d.Metrics == nil {
		return errors.New("admin: Logger, Cluster, Store, Procedures, RenderConfig and Metrics are required")
	}
	h := &handlers{
		log:     d.Logger.With("component", "admin"),
		cluster: d.Cluster,
		store:   d.Store,
		procs:   d.Procedures,
		render:  d.RenderConfig,
		auth:    d.Auth,
		maxBody: d.MaxBodySize,
		timeout: d.RequestTimeout,
	}
	h.readiness = d.Ready
	if h.readiness == nil {
		h.readiness = h.leaderKnown
	}
	if h.maxBody <= 0 {
		h.maxBody = DefaultMaxBodySize
	}
	if h.timeout <= 0 {
		h.timeout = DefaultRequestTimeout
	}
	if h.auth.open() {
		h.log.Warn("admin POST endpoints accept any caller: set http.admin_token or http.tls.ca_cert_path, or keep http.addr reachable by operators only")
	}
	metrics := promhttp.HandlerFor(d.Metrics, promhttp.HandlerOpts{
		ErrorLog:          promLogger{h.log},
		ErrorHandling:     promhttp.ContinueOnError,
		EnableOpenMetrics: true,
	})
	routes := []route{
		{http.MethodGet, "/admin/leader", h.leader},
		{http.MethodGet, "/admin/members", h.members},
		{http.MethodGet, "/admin/nodes", h.nodes(d.Memory, d.HeartbeatInterval)},
		{http.MethodGet, "/admin/tables/route", h.tableRoute(d.Memory, d.HeartbeatInterval)},
		{http.MethodGet, "/admin/migrations", h.migrations(d.Migrations)},
		{http.MethodGet, "/admin/maintenance", h.getMaintenance},
		{http.MethodPost, "/admin/maintenance", h.postMaintenance},
		{http.MethodPost, "/admin/maintenance/enable", h.setMaintenance(true)},
		{http.MethodPost, "/admin/maintenance/disable", h.setMaintenance(false)},
		{http.MethodGet, "/admin/procedure-manager/status", h.procedureStatus},
		{http.MethodPost, "/admin/procedure-manager/pause", h.pauseProcedures(true)},
		{http.MethodPost, "/admin/procedure-manager/resume", h.pauseProcedures(false)},
		{http.MethodGet, "/admin/config", h.config},
		{http.MethodGet, "/admin/ready", h.ready},
		{http.MethodGet, "/metrics", metrics.ServeHTTP},
	}
	allowed := map[string][]string{}
	var paths []string
	for _, rt := range routes {
		next := h.withTimeout(h.limitBody(rt.handler))
		if rt.method == http.MethodPost {
			next = h.authorize(next)
		}
		mux.Handle(rt.method+" "+rt.path, next)
		if _, ok := allowed[rt.path]; !ok {
			paths = append(paths, rt.path)
		}
		allowed[rt.path] = append(allowed[rt.path], rt.method)
		if rt.method == http.MethodGet {
			allowed[rt.path] = append(allowed[rt.path], http.MethodHead)
		}
	}
	// GET /admin/health is the server's own (package server); its wrong
	// methods are answered here, in JSON like every other path's.
	paths = append(paths, "/admin/health")
	allowed["/admin/health"] = []string{http.MethodGet, http.MethodHead}
	// The method-less pattern is less specific than the ones above, so it
	// only sees the wrong methods; it answers them in JSON like every error.
	for _, p := range paths {
		methods := allowed[p]
		slices.Sort(methods)
		mux.HandleFunc(p, methodNotAllowed(p, strings.Join(methods, ", ")))
	}
	return nil
}

func (h *handlers) withTimeout(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), h.timeout)
		defer cancel()
		next(w, r.WithContext(ctx))
	}
}

func (h *handlers) config(w http.ResponseWriter, r *http.Request) {
	out, err := h.render()
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(out)
}

// promLogger routes promhttp's gathering errors to slog.
type promLogger struct{ log *slog.Logger }

func (l promLogger) Println(v ...any) {
	l.log.Error("gathering metrics failed", "err", fmt.Sprint(v...))
}
