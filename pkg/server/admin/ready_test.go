package admin_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/election"
	"github.com/pgmetasrv/metasrv/pkg/server/admin"
)

// Liveness (GET /admin/health, the server's own) answers wrong methods in
// JSON like every other path.
func TestHealthWrongMethodIsJSON(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.mux.HandleFunc("GET /admin/health", admin.Health) // as package server registers it
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		r := e.do(t, m, "/admin/health", "")
		require.Equal(t, http.StatusMethodNotAllowed, r.code)
		require.Equal(t, "GET, HEAD", r.header.Get("Allow"))
		require.Contains(t, r.json(t)["error"], "method "+m+" is not allowed on /admin/health")
	}
	r := e.do(t, http.MethodGet, "/admin/health", "")
	require.Equal(t, http.StatusOK, r.code)
	require.Equal(t, "OK", r.body)
}

func TestReadyNeedsALeaderByDefault(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.do(t, http.MethodGet, "/admin/ready", "")
	require.Equal(t, http.StatusOK, r.code, r.body)
	require.Equal(t, map[string]any{"ready": true}, r.json(t))

	e.cluster.leader, e.cluster.leaderErr = election.Leader{}, fmt.Errorf("read: %w", election.ErrNoLeader)
	r = e.do(t, http.MethodGet, "/admin/ready", "")
	require.Equal(t, http.StatusServiceUnavailable, r.code)
	body := r.json(t)
	require.Equal(t, false, body["ready"])
	require.Contains(t, body["reason"], "no leader is known")

	r = e.do(t, http.MethodPost, "/admin/ready", "")
	require.Equal(t, http.StatusMethodNotAllowed, r.code)
	require.Contains(t, r.json(t)["error"], "not allowed")
}

func TestReadyAsksDepsReady(t *testing.T) {
	t.Parallel()
	notReady := errors.New("not connected to PostgreSQL: connection refused")
	var answer error
	e := newEnv(t, func(d *admin.Deps, _ *env) {
		d.Ready = func(context.Context) error { return answer }
	})
	answer = notReady
	r := e.do(t, http.MethodGet, "/admin/ready", "")
	require.Equal(t, http.StatusServiceUnavailable, r.code)
	require.Equal(t, map[string]any{"ready": false, "reason": notReady.Error()}, r.json(t))
	answer = nil
	require.Equal(t, http.StatusOK, e.do(t, http.MethodGet, "/admin/ready", "").code)
}

// While the node connects, liveness and metrics answer, readiness says why
// it is not ready, and everything else is a JSON 503.
func TestStartingEndpoints(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "metasrv_test_total", Help: "test"})
	reg.MustRegister(c)
	e := &env{mux: http.NewServeMux()}
	admin.RegisterStarting(e.mux, admin.StartingDeps{Metrics: reg, Reason: func() string { return "connecting to PostgreSQL" }})

	r := e.do(t, http.MethodGet, "/admin/health", "")
	require.Equal(t, http.StatusOK, r.code)
	require.Equal(t, "OK", r.body)
	r = e.do(t, http.MethodGet, "/admin/ready", "")
	require.Equal(t, http.StatusServiceUnavailable, r.code)
	require.Equal(t, map[string]any{"ready": false, "reason": "connecting to PostgreSQL"}, r.json(t))
	r = e.do(t, http.MethodGet, "/metrics", "")
	require.Equal(t, http.StatusOK, r.code)
	require.Contains(t, r.body, "metasrv_test_total")
	r = e.do(t, http.MethodGet, "/admin/leader", "")
	require.Equal(t, http.StatusServiceUnavailable, r.code)
	require.Contains(t, r.json(t)["error"], "metasrv is starting: connecting to PostgreSQL")
	r = e.do(t, http.MethodPost, "/admin/health", "")
	require.Equal(t, http.StatusMethodNotAllowed, r.code)
	require.Contains(t, r.json(t)["error"], "not allowed")
}
