package admin

import (
	"context"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// readyBody is the answer of GET /admin/ready.
type readyBody struct {
	Ready bool `json:"ready"`
	// Reason says why the node is not ready; empty when it is.
	Reason string `json:"reason,omitempty"`
}

// ready answers GET /admin/ready: 200 when the node can serve (connected to
// PostgreSQL, a leader known), else 503 with the reason. /admin/health is
// liveness: it answers 200 whenever the process serves HTTP.
func (h *handlers) ready(w http.ResponseWriter, r *http.Request) {
	if err := h.readiness(r.Context()); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, readyBody{Reason: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, readyBody{Ready: true})
}

// leaderKnown is the readiness used when Deps.Ready is nil.
func (h *handlers) leaderKnown(ctx context.Context) error {
	if _, err := h.cluster.Leader(ctx); err != nil {
		return errNoLeaderKnown
	}
	return nil
}

// StartingDeps are what the admin endpoints of a starting node are built
// from: the node is not connected to its store yet, so only liveness,
// readiness (always 503) and the metrics answer.
type StartingDeps struct {
	// Metrics is the registry served on /metrics.
	Metrics prometheus.Gatherer
	// Reason says why the node is not ready yet (what it waits for); it
	// must not name internal hosts, the endpoint needs no credentials.
	Reason func() string
}

// RegisterStarting adds to mux the endpoints that answer while the node
// connects to PostgreSQL: GET /admin/health (200 OK), GET /admin/ready (503
// with the reason), GET /metrics; every other path answers 503 in JSON.
func RegisterStarting(mux *http.ServeMux, d StartingDeps) {
	mux.HandleFunc("GET /admin/health", Health)
	mux.HandleFunc("GET /admin/ready", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusServiceUnavailable, readyBody{Reason: d.Reason()})
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(d.Metrics, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError, EnableOpenMetrics: true}))
	for _, p := range []string{"/admin/health", "/admin/ready", "/metrics"} {
		mux.HandleFunc(p, methodNotAllowed(p, "GET, HEAD"))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusServiceUnavailable, "metasrv is starting: "+d.Reason())
	})
}

// Health is the liveness answer, GET /admin/health: 200 "OK" while the
// process serves HTTP.
func Health(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("OK"))
}

// methodNotAllowed answers a wrong method on path in JSON, as every error.
func methodNotAllowed(path, allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" is not allowed on "+path+"; use "+allow)
	}
}
