package admin_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/election"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/kv/memkv"
	"github.com/pgmetasrv/metasrv/pkg/procedure"
	"github.com/pgmetasrv/metasrv/pkg/server/admin"
)

// fakeCluster answers Leader and Candidates from fields.
type fakeCluster struct {
	leader    election.Leader
	leaderErr error
	nodes     []election.NodeInfo
	nodesErr  error
}

func (c *fakeCluster) Leader(context.Context) (election.Leader, error) {
	return c.leader, c.leaderErr
}

func (c *fakeCluster) Candidates(context.Context) ([]election.NodeInfo, error) {
	return c.nodes, c.nodesErr
}

// fakeStore is a node over one real in-memory backend: the leader's store
// while leading, a NotLeaderError naming leaderAddr otherwise.
type fakeStore struct {
	mu         sync.Mutex
	leading    bool
	leaderAddr string
	backend    kv.Backend
}

func (s *fakeStore) LeaderBackend(context.Context) (kv.Backend, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.leading {
		return nil, &election.NotLeaderError{Leader: s.leaderAddr}
	}
	return s.backend, nil
}

func (s *fakeStore) SerializableBackend() kv.Backend { return s.backend }

// fakeProcs behaves like the procedure manager: not running on a follower.
type fakeProcs struct {
	mu      sync.Mutex
	running bool
	paused  bool
	failErr error // returned by Pause and Resume when set
	stats   procedure.Stats
}

func (p *fakeProcs) op(on bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.running {
		return procedure.ErrNotRunning
	}
	if p.failErr != nil {
		return p.failErr
	}
	p.paused = on
	return nil
}

func (p *fakeProcs) Pause(context.Context) error  { return p.op(true) }
func (p *fakeProcs) Resume(context.Context) error { return p.op(false) }

func (p *fakeProcs) Paused(context.Context) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.running {
		return false, procedure.ErrNotRunning
	}
	return p.paused, nil
}

func (p *fakeProcs) Stats() procedure.Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	s.Running, s.Paused = p.running, p.paused
	return s
}

const (
	selfAddr   = "10.0.0.1:3002"
	leaderAddr = "10.0.0.2:3002"
	testToken  = "0123456789abcdef-token"
)

type env struct {
	mux     *http.ServeMux
	cluster *fakeCluster
	store   *fakeStore
	procs   *fakeProcs
	reg     *prometheus.Registry
	render  func() ([]byte, error)
}

type option func(*admin.Deps, *env)

func withAuth(a admin.Auth) option { return func(d *admin.Deps, _ *env) { d.Auth = a } }

func withBodyLimit(n int64) option { return func(d *admin.Deps, _ *env) { d.MaxBodySize = n } }

// newEnv registers the admin API over fakes of a leader node.
func newEnv(t *testing.T, opts ...option) *env {
	t.Helper()
	e := &env{
		mux: http.NewServeMux(),
		cluster: &fakeCluster{
			leader: election.Leader{Addr: selfAddr, Term: 3, Info: election.NodeInfo{Addr: selfAddr, Version: "v1"}},
			nodes: []election.NodeInfo{
				{Addr: "10.0.0.3:3002", Version: "v1", Hostname: "c"},
				{Addr: selfAddr, Version: "v1", Hostname: "a"},
			},
		},
		store: &fakeStore{leading: true, leaderAddr: leaderAddr, backend: memkv.New()},
		procs: &fakeProcs{running: true},
		reg:   prometheus.NewRegistry(),
	}
	e.render = func() ([]byte, error) { return []byte("backend = 'memory_store'\n"), nil }
	d := admin.Deps{
		Logger:       slog.New(slog.DiscardHandler),
		Cluster:      e.cluster,
		Store:        e.store,
		Procedures:   e.procs,
		RenderConfig: func() ([]byte, error) { return e.render() },
		Metrics:      e.reg,
	}
	for _, o := range opts {
		o(&d, e)
	}
	require.NoError(t, admin.Register(e.mux, d))
	return e
}

// follower turns the fake node into a follower of leaderAddr.
func (e *env) follower() {
	e.store.mu.Lock()
	e.store.leading = false
	e.store.mu.Unlock()
	e.procs.mu.Lock()
	e.procs.running = false
	e.procs.mu.Unlock()
	e.cluster.leader = election.Leader{Addr: leaderAddr, Term: 4}
}

type response struct {
	code   int
	header http.Header
	body   string
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	require.Equal(t, "application/json", r.header.Get("Content-Type"), r.body)
	var out map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.body), &out), r.body)
	return out
}

type reqOption func(*http.Request)

func bearer(tok string) reqOption {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
}

// verifiedCert makes the request look like one whose TLS client certificate
// crypto/tls verified.
func verifiedCert(r *http.Request) {
	cert := &x509.Certificate{Subject: pkix.Name{CommonName: "operator"}}
	r.TLS = &tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{cert}}}
}

func (e *env) do(t *testing.T, method, path, body string, opts ...reqOption) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequestWithContext(t.Context(), method, path, rd)
	for _, o := range opts {
		o(req)
	}
	rec := httptest.NewRecorder()
	e.mux.ServeHTTP(rec, req)
	return response{code: rec.Code, header: rec.Header(), body: rec.Body.String()}
}
