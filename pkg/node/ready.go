package node

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/pgmetasrv/metasrv/pkg/metasrv"
)

// readyPingTimeout bounds the PostgreSQL check of one readiness answer.
const readyPingTimeout = 2 * time.Second

// readyCheck answers /admin/ready: PostgreSQL answers (postgres_store) and
// a leader is known. The reasons name no host: anyone may ask.
func (n *Node) readyCheck(ctx context.Context) error {
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

// registerPprof serves Go's profiles on the admin address, where an operator
// debugging a slow or stuck node can reach them.
func registerPprof(mux *http.ServeMux) {
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
}
