package admin_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/election"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/procedure"
	"github.com/pgmetasrv/metasrv/pkg/server/admin"
)

func TestRegisterNeedsDeps(t *testing.T) {
	t.Parallel()
	err := admin.Register(http.NewServeMux(), admin.Deps{Logger: slog.New(slog.DiscardHandler)})
	require.ErrorContains(t, err, "required")
}

func TestLeader(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.do(t, http.MethodGet, "/admin/leader", "")
	require.Equal(t, http.StatusOK, r.code)
	require.Equal(t, selfAddr, r.body)
	require.Equal(t, "text/plain; charset=utf-8", r.header.Get("Content-Type"))

	e.cluster.leader, e.cluster.leaderErr = election.Leader{}, fmt.Errorf("read: %w", election.ErrNoLeader)
	r = e.do(t, http.MethodGet, "/admin/leader", "")
	require.Equal(t, http.StatusServiceUnavailable, r.code)
	require.Contains(t, r.json(t)["error"], "no leader is elected")

	// A leader without an address is as good as none.
	e.cluster.leader, e.cluster.leaderErr = election.Leader{Term: 5}, nil
	r = e.do(t, http.MethodGet, "/admin/leader", "")
	require.Equal(t, http.StatusServiceUnavailable, r.code)

	// A storage failure does not leak its cause.
	e.cluster.leaderErr = fmt.Errorf("%w: dial 10.9.9.9:5432", kv.ErrUnavailable)
	r = e.do(t, http.MethodGet, "/admin/leader", "")
	require.Equal(t, http.StatusServiceUnavailable, r.code)
	require.NotContains(t, r.body, "10.9.9.9")
}

func TestMembers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.do(t, http.MethodGet, "/admin/members", "")
	require.Equal(t, http.StatusOK, r.code)
	var members []admin.Member
	require.NoError(t, json.Unmarshal([]byte(r.body), &members))
	require.Len(t, members, 2)
	require.Equal(t, selfAddr, members[0].Addr, "sorted by address")
	require.True(t, members[0].IsLeader)
	require.Equal(t, "a", members[0].Hostname)
	require.False(t, members[1].IsLeader)
	require.Contains(t, r.body, `"is_leader":true`)
	require.Contains(t, r.body, `"hostname":"a"`)

	// The leader's lapsed candidate record does not hide it.
	e.cluster.nodes = e.cluster.nodes[:1]
	r = e.do(t, http.MethodGet, "/admin/members", "")
	require.NoError(t, json.Unmarshal([]byte(r.body), &members))
	require.Len(t, members, 2)
	require.Equal(t, selfAddr, members[0].Addr)
	require.True(t, members[0].IsLeader)

	// No nodes and no leader: an empty array, not null.
	e.cluster.nodes, e.cluster.leader, e.cluster.leaderErr = nil, election.Leader{}, election.ErrNoLeader
	r = e.do(t, http.MethodGet, "/admin/members", "")
	require.Equal(t, http.StatusOK, r.code)
	require.Equal(t, "[]\n", r.body)

	e.cluster.nodesErr = fmt.Errorf("%w: timeout", kv.ErrUnavailable)
	r = e.do(t, http.MethodGet, "/admin/members", "")
	require.Equal(t, http.StatusServiceUnavailable, r.code)
}

func maintenanceOn(t *testing.T, e *env) bool {
	t.Helper()
	on, err := admin.MaintenanceEnabled(t.Context(), e.store.backend)
	require.NoError(t, err)
	return on
}

func TestMaintenanceSwitch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.do(t, http.MethodGet, "/admin/maintenance", "")
	require.Equal(t, http.StatusOK, r.code)
	require.Equal(t, `{"enabled":false}`+"\n", r.body)

	r = e.do(t, http.MethodPost, "/admin/maintenance/enable", "")
	require.Equal(t, http.StatusOK, r.code)
	require.Equal(t, map[string]any{"enabled": true}, r.json(t))
	require.True(t, maintenanceOn(t, e), "the switch is stored")
	// GreptimeDB's switch: the key __switches/maintenance with an empty value.
	stored, err := kv.Get(t.Context(), e.store.backend, []byte("__switches/maintenance"))
	require.NoError(t, err)
	require.NotNil(t, stored)
	require.Empty(t, stored.Value)

	// Enabling again changes nothing.
	r = e.do(t, http.MethodPost, "/admin/maintenance/enable", "")
	require.Equal(t, http.StatusOK, r.code)
	again, err := kv.Get(t.Context(), e.store.backend, []byte("__switches/maintenance"))
	require.NoError(t, err)
	require.Equal(t, stored, again)

	r = e.do(t, http.MethodGet, "/admin/maintenance", "")
	require.Equal(t, map[string]any{"enabled": true}, r.json(t))

	r = e.do(t, http.MethodPost, "/admin/maintenance/disable", "")
	require.Equal(t, map[string]any{"enabled": false}, r.json(t))
	require.False(t, maintenanceOn(t, e))

	r = e.do(t, http.MethodPost, "/admin/maintenance", `{"enabled": true}`)
	require.Equal(t, http.StatusOK, r.code, r.body)
	require.True(t, maintenanceOn(t, e))
	r = e.do(t, http.MethodPost, "/admin/maintenance", `{"enabled":false}`)
	require.Equal(t, map[string]any{"enabled": false}, r.json(t))
	require.False(t, maintenanceOn(t, e))
}

func TestMaintenanceLegacyKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	legacy := []byte("__maintenance")
	// A switch GreptimeDB wrote before the __switches keys counts as on.
	_, err := e.store.backend.Put(ctx, kv.PutRequest{Key: legacy, Value: []byte("true")})
	require.NoError(t, err)
	r := e.do(t, http.MethodGet, "/admin/maintenance", "")
	require.Equal(t, map[string]any{"enabled": true}, r.json(t))

	// Enabling finds it on and writes nothing.
	changed, err := admin.SetMaintenance(ctx, e.store.backend, true)
	require.NoError(t, err)
	require.False(t, changed)
	got, err := kv.Get(ctx, e.store.backend, []byte("__switches/maintenance"))
	require.NoError(t, err)
	require.Nil(t, got)

	// Disabling deletes both keys.
	_, err = e.store.backend.Put(ctx, kv.PutRequest{Key: []byte("__switches/maintenance")})
	require.NoError(t, err)
	r = e.do(t, http.MethodPost, "/admin/maintenance/disable", "")
	require.Equal(t, map[string]any{"enabled": false}, r.json(t))
	require.False(t, maintenanceOn(t, e))
	left, err := e.store.backend.BatchGet(ctx, kv.BatchGetRequest{Keys: [][]byte{legacy, []byte("__switches/maintenance")}})
	require.NoError(t, err)
	require.Empty(t, left.Kvs)

	changed, err = admin.SetMaintenance(ctx, e.store.backend, false)
	require.NoError(t, err)
	require.False(t, changed, "already off")
	changed, err = admin.SetMaintenance(ctx, e.store.backend, true)
	require.NoError(t, err)
	require.True(t, changed)
}

func TestMaintenanceBadBody(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cases := []struct{ name, body, want string }{
		{"empty", "", "empty body"},
		{"not json", "enable", "invalid body"},
		{"unknown field", `{"enabled":true,"force":true}`, `unknown field "force"`},
		{"missing field", `{}`, `missing field "enabled"`},
		{"null", `null`, `missing field "enabled"`},
		{"wrong type", `{"enabled":"yes"}`, "invalid body"},
		{"trailing data", `{"enabled":true} {"enabled":false}`, "data after the JSON object"},
		{"array", `[true]`, "invalid body"},
	}
	for _, c := range cases {
		r := e.do(t, http.MethodPost, "/admin/maintenance", c.body)
		require.Equal(t, http.StatusBadRequest, r.code, c.name)
		msg := r.json(t)["error"].(string)
		require.Contains(t, msg, c.want, c.name)
		require.Contains(t, msg, `{"enabled": true}`, "%s: the error says what is expected", c.name)
		require.False(t, maintenanceOn(t, e), "%s: nothing changed", c.name)
	}
}

func TestMaintenanceOnFollower(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, err := admin.SetMaintenance(t.Context(), e.store.backend, true)
	require.NoError(t, err)
	e.follower()

	// Reads are served by every node, from the durable store.
	r := e.do(t, http.MethodGet, "/admin/maintenance", "")
	require.Equal(t, http.StatusOK, r.code)
	require.Equal(t, map[string]any{"enabled": true}, r.json(t))

	for _, p := range []string{"/admin/maintenance/disable", "/admin/maintenance"} {
		r = e.do(t, http.MethodPost, p, `{"enabled":false}`)
		require.Equal(t, http.StatusServiceUnavailable, r.code, p)
		body := r.json(t)
		require.Equal(t, leaderAddr, body["leader"])
		require.Contains(t, body["error"], "the leader is "+leaderAddr)
	}
	require.True(t, maintenanceOn(t, e), "nothing changed")
}

func TestMaintenanceStoreErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		err  error
		code int
		want string
	}{
		{&election.FencedError{Expected: 3, Actual: 4}, http.StatusServiceUnavailable, "lost its leadership"},
		{fmt.Errorf("%w: commit: EOF", kv.ErrOutcomeUnknown), http.StatusInternalServerError, "may or may not have been applied"},
		{fmt.Errorf("%w: dial 10.9.9.9", kv.ErrUnavailable), http.StatusServiceUnavailable, "storage backend is unavailable"},
		{errors.New("secret internals"), http.StatusInternalServerError, "internal error"},
	}
	for _, c := range cases {
		e := newEnv(t)
		e.store.backend = failingBackend{Backend: e.store.backend, err: c.err}
		r := e.do(t, http.MethodPost, "/admin/maintenance/enable", "")
		require.Equal(t, c.code, r.code, c.err.Error())
		require.Contains(t, r.json(t)["error"], c.want)
		require.NotContains(t, r.body, "10.9.9.9")
		require.NotContains(t, r.body, "secret")
	}
}

// failingBackend fails every write with err.
type failingBackend struct {
	kv.Backend
	err error
}

func (f failingBackend) CompareAndPut(context.Context, kv.CompareAndPutRequest) (kv.CompareAndPutResponse, error) {
	return kv.CompareAndPutResponse{}, f.err
}

func (f failingBackend) Txn(context.Context, kv.TxnRequest) (kv.TxnResponse, error) {
	return kv.TxnResponse{}, f.err
}

func TestWrongMethod(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cases := []struct{ method, path, allow string }{
		{http.MethodPut, "/admin/maintenance", "GET, HEAD, POST"},
		{http.MethodDelete, "/admin/leader", "GET, HEAD"},
		{http.MethodGet, "/admin/maintenance/enable", "POST"},
		{http.MethodGet, "/admin/procedure-manager/pause", "POST"},
		{http.MethodPost, "/admin/config", "GET, HEAD"},
		{http.MethodPost, "/metrics", "GET, HEAD"},
	}
	for _, c := range cases {
		r := e.do(t, c.method, c.path, "")
		require.Equal(t, http.StatusMethodNotAllowed, r.code, c.path)
		require.Equal(t, c.allow, r.header.Get("Allow"), c.path)
		require.Contains(t, r.json(t)["error"], "method "+c.method+" is not allowed on "+c.path)
	}
	require.False(t, maintenanceOn(t, e))
	r := e.do(t, http.MethodHead, "/admin/leader", "")
	require.Equal(t, http.StatusOK, r.code)
}

func TestBodyLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withBodyLimit(64))
	big := `{"enabled":true,"pad":"` + strings.Repeat("x", 100) + `"}`

	r := e.do(t, http.MethodPost, "/admin/maintenance", big)
	require.Equal(t, http.StatusRequestEntityTooLarge, r.code)
	require.Contains(t, r.json(t)["error"], "over the limit of 64 bytes (http.body_limit)")

	// Without a Content-Length (chunked), the limit applies while reading.
	for _, p := range []string{"/admin/maintenance", "/admin/maintenance/enable", "/admin/procedure-manager/pause"} {
		req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, p, strings.NewReader(big))
		req.ContentLength = -1
		rec := httptest.NewRecorder()
		e.mux.ServeHTTP(rec, req)
		require.Equal(t, http.StatusRequestEntityTooLarge, rec.Code, p)
		require.Contains(t, rec.Body.String(), "http.body_limit")
	}
	require.False(t, maintenanceOn(t, e), "nothing changed")
	require.False(t, e.procs.paused)

	// Under the limit is fine.
	r = e.do(t, http.MethodPost, "/admin/maintenance", `{"enabled":true}`)
	require.Equal(t, http.StatusOK, r.code)
}

func TestAuthWithToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withAuth(admin.Auth{Token: testToken}))

	r := e.do(t, http.MethodPost, "/admin/maintenance/enable", "")
	require.Equal(t, http.StatusUnauthorized, r.code)
	require.Equal(t, `Bearer realm="metasrv admin"`, r.header.Get("WWW-Authenticate"))
	require.Contains(t, r.json(t)["error"], "Authorization: Bearer <http.admin_token>")
	require.NotContains(t, r.body, testToken)

	for _, bad := range []string{"wrong", testToken + "x", testToken[:len(testToken)-1], ""} {
		r = e.do(t, http.MethodPost, "/admin/maintenance/enable", "", bearer(bad))
		require.Equal(t, http.StatusUnauthorized, r.code, bad)
	}
	r = e.do(t, http.MethodPost, "/admin/maintenance/enable", "", func(r *http.Request) {
		r.Header.Set("Authorization", "Basic "+testToken)
	})
	require.Equal(t, http.StatusUnauthorized, r.code, "only the Bearer scheme")
	require.False(t, maintenanceOn(t, e), "refused requests change nothing")

	r = e.do(t, http.MethodPost, "/admin/maintenance/enable", "", bearer(testToken))
	require.Equal(t, http.StatusOK, r.code)
	require.True(t, maintenanceOn(t, e))
	r = e.do(t, http.MethodPost, "/admin/maintenance/disable", "", func(r *http.Request) {
		r.Header.Set("Authorization", "bearer "+testToken)
	})
	require.Equal(t, http.StatusOK, r.code, "the scheme is case-insensitive")

	// A verified client certificate authorises too.
	r = e.do(t, http.MethodPost, "/admin/procedure-manager/pause", "", verifiedCert)
	require.Equal(t, http.StatusOK, r.code)
	// TLS without a verified chain does not.
	r = e.do(t, http.MethodPost, "/admin/procedure-manager/resume", "", func(r *http.Request) {
		r.TLS = &tls.ConnectionState{}
	})
	require.Equal(t, http.StatusUnauthorized, r.code)

	// Reads need no credentials.
	for _, p := range []string{"/admin/leader", "/admin/members", "/admin/maintenance", "/admin/procedure-manager/status", "/admin/config", "/metrics"} {
		r = e.do(t, http.MethodGet, p, "")
		require.Equal(t, http.StatusOK, r.code, p)
	}
}

func TestAuthClientCertsOnly(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withAuth(admin.Auth{ClientCerts: true}))
	r := e.do(t, http.MethodPost, "/admin/maintenance/enable", "", bearer(testToken))
	require.Equal(t, http.StatusUnauthorized, r.code, "no token is configured, so none is accepted")
	require.Empty(t, r.header.Get("WWW-Authenticate"))
	require.Contains(t, r.json(t)["error"], "TLS client certificate signed by http.tls.ca_cert_path")
	r = e.do(t, http.MethodPost, "/admin/maintenance/enable", "", verifiedCert)
	require.Equal(t, http.StatusOK, r.code)
}

func TestAuthOpenWithoutCredentialsConfigured(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.do(t, http.MethodPost, "/admin/maintenance/enable", "")
	require.Equal(t, http.StatusOK, r.code)
}

func TestProcedureManager(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.procs.stats = procedure.Stats{
		Active:          map[procedure.State]int{procedure.StateRunning: 2, procedure.StateRetrying: 1},
		WaitingForLocks: 1,
		Finished:        map[procedure.State]uint64{procedure.StateDone: 7},
		Fenced:          1,
	}
	r := e.do(t, http.MethodGet, "/admin/procedure-manager/status", "")
	require.Equal(t, http.StatusOK, r.code)
	var st admin.ProcedureStatus
	require.NoError(t, json.Unmarshal([]byte(r.body), &st))
	require.False(t, st.Paused)
	require.Equal(t, map[procedure.State]int{"running": 2, "retrying": 1, "rolling_back": 0}, st.Active)
	require.Equal(t, map[procedure.State]uint64{"done": 7, "rolled_back": 0, "failed": 0}, st.Finished)
	require.Equal(t, 1, st.WaitingForLocks)
	require.Equal(t, uint64(1), st.Fenced)

	r = e.do(t, http.MethodPost, "/admin/procedure-manager/pause", "")
	require.Equal(t, http.StatusOK, r.code)
	require.Equal(t, map[string]any{"paused": true}, r.json(t))
	r = e.do(t, http.MethodGet, "/admin/procedure-manager/status", "")
	require.Contains(t, r.body, `"paused":true`)
	r = e.do(t, http.MethodPost, "/admin/procedure-manager/resume", "")
	require.Equal(t, map[string]any{"paused": false}, r.json(t))
	require.False(t, e.procs.paused)

	e.procs.failErr = fmt.Errorf("procedure: pause: %w", &election.FencedError{Expected: 3, Actual: 4})
	r = e.do(t, http.MethodPost, "/admin/procedure-manager/pause", "")
	require.Equal(t, http.StatusServiceUnavailable, r.code)
	require.False(t, e.procs.paused)
}

func TestProcedureManagerOnFollower(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.follower()
	for _, c := range []struct{ method, path string }{
		{http.MethodGet, "/admin/procedure-manager/status"},
		{http.MethodPost, "/admin/procedure-manager/pause"},
		{http.MethodPost, "/admin/procedure-manager/resume"},
	} {
		r := e.do(t, c.method, c.path, "")
		require.Equal(t, http.StatusServiceUnavailable, r.code, c.path)
		body := r.json(t)
		require.Equal(t, leaderAddr, body["leader"], c.path)
		require.Contains(t, body["error"], "send this request to the leader")
		// The code and reason the gRPC API gives the same refusal.
		require.Equal(t, "UNAVAILABLE", body["code"], c.path)
		require.Equal(t, "NOT_LEADER", body["reason"], c.path)
	}

	// With no leader known, the refusal says so.
	e.cluster.leader, e.cluster.leaderErr = election.Leader{}, election.ErrNoLeader
	r := e.do(t, http.MethodPost, "/admin/procedure-manager/pause", "")
	require.Equal(t, http.StatusServiceUnavailable, r.code)
	require.Contains(t, r.json(t)["error"], "no leader is known")
	require.NotContains(t, r.body, `"leader"`)
}

func TestConfig(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.do(t, http.MethodGet, "/admin/config", "")
	require.Equal(t, http.StatusOK, r.code)
	require.Equal(t, "backend = 'memory_store'\n", r.body)
	require.Equal(t, "no-store", r.header.Get("Cache-Control"))

	e.render = func() ([]byte, error) { return nil, errors.New("render: boom") }
	r = e.do(t, http.MethodGet, "/admin/config", "")
	require.Equal(t, http.StatusInternalServerError, r.code)
	require.NotContains(t, r.body, "boom")
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "metasrv_test_total", Help: "test"})
	e.reg.MustRegister(c)
	c.Add(3)
	r := e.do(t, http.MethodGet, "/metrics", "")
	require.Equal(t, http.StatusOK, r.code)
	require.Contains(t, r.body, "metasrv_test_total 3")
}
