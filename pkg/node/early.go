package node

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pgmetasrv/metasrv/pkg/server/admin"
)

// earlyAdmin serves the HTTP admin address while the node connects to
// PostgreSQL, so liveness, readiness (503, with the reason) and /metrics
// answer during a long wait. It is stopped just before the real server
// takes the same listener over.
type earlyAdmin struct {
	srv  *http.Server
	lis  *keptListener
	done chan struct{}
}

// startEarlyAdmin serves the early admin on lis until stop, which hands lis
// back open: the real server goes on serving the same socket, so the address
// is never free for another process to take.
func startEarlyAdmin(lis net.Listener, tlsCfg *tls.Config, reg prometheus.Gatherer, reason func() string, log *slog.Logger) *earlyAdmin {
	mux := http.NewServeMux()
	admin.RegisterStarting(mux, admin.StartingDeps{Metrics: reg, Reason: reason})
	e := &earlyAdmin{
		srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
			ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)},
		lis:  &keptListener{Listener: lis},
		done: make(chan struct{}),
	}
	if tlsCfg != nil {
		e.srv.TLSConfig = tlsCfg.Clone()
	}
	go func() {
		defer close(e.done)
		var err error
		if e.srv.TLSConfig != nil {
			err = e.srv.ServeTLS(e.lis, "", "")
		} else {
			err = e.srv.Serve(e.lis)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("early HTTP admin stopped", "err", err)
		}
	}()
	log.Info("serving HTTP admin while connecting to PostgreSQL", "http_addr", lis.Addr().String())
	return e
}

// stop closes the early admin's connections and waits for it; the listener
// stays open, ready to accept for the real server. Connections waiting in the
// listen backlog are not lost: the real server accepts them.
func (e *earlyAdmin) stop() {
	d, ok := e.lis.Listener.(interface{ SetDeadline(time.Time) error })
	if !ok {
		// Not a TCP listener: nothing wakes Accept but closing it.
		_ = e.lis.Listener.Close()
		_ = e.srv.Close()
		<-e.done
		return
	}
	// Close waits for Serve, which waits in Accept: a past deadline wakes
	// it. Serve retries a timed-out Accept after a few milliseconds until it
	// sees the server closed, then returns; keptListener keeps the socket.
	_ = d.SetDeadline(time.Now())
	_ = e.srv.Close()
	<-e.done
	_ = d.SetDeadline(time.Time{})
}

// keptListener ignores Close, so the early admin's server can be closed
// without closing the socket it served.
type keptListener struct{ net.Listener }

func (keptListener) Close() error { return nil }

// connectState is what the node knows of its connection to PostgreSQL while
// it waits for it, for /admin/ready.
type connectState struct {
	mu     sync.Mutex
	reason string
}

func (s *connectState) set(r string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reason = r
}

func (s *connectState) get() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reason == "" {
		return "connecting to PostgreSQL"
	}
	return s.reason
}

// adviceHandler adds to every warning that carries an "err" attribute (the
// connection retries of postgres.Connect) a "check" attribute saying what
// the operator should look at, and records it for /admin/ready.
type adviceHandler struct {
	slog.Handler
	state *connectState
}

func (h adviceHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		var cause error
		r.Attrs(func(a slog.Attr) bool {
			if e, ok := a.Value.Any().(error); ok && a.Key == "err" {
				cause = e
				return false
			}
			return true
		})
		if cause != nil {
			what, check := connectAdvice(cause)
			r = r.Clone()
			r.AddAttrs(slog.String("check", check))
			h.state.set("not connected to PostgreSQL (" + what + "); check " + check + "; see the server log")
		}
	}
	return h.Handler.Handle(ctx, r)
}

func (h adviceHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return adviceHandler{Handler: h.Handler.WithAttrs(as), state: h.state}
}

func (h adviceHandler) WithGroup(name string) slog.Handler {
	return adviceHandler{Handler: h.Handler.WithGroup(name), state: h.state}
}

// connectAdvice classifies a failed connection attempt: what happened, in
// words free of host names, and what to check, by configuration key.
func connectAdvice(err error) (what, check string) {
	var dns *net.DNSError
	var record tls.RecordHeaderError
	msg := err.Error()
	switch {
	case strings.Contains(msg, "server refused TLS connection"):
		return "the server does not accept TLS", "that backend_tls.mode (or sslmode in store_addrs) matches the server: it asks for TLS but the server has ssl = off; enable ssl on the server or set backend_tls.mode = \"disable\" or \"prefer\""
	case errors.As(err, &record), strings.Contains(msg, "tls:"):
		return "the TLS handshake failed", "that store_addrs names PostgreSQL's host and port (not another service) and that backend_tls.mode and its certificates match the server's TLS setup"
	case errors.As(err, &dns):
		return "the host name does not resolve", "the host in store_addrs and this node's DNS"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused", "the host and port in store_addrs, that PostgreSQL runs, and its listen_addresses and port"
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		return "no answer in time", "the host and port in store_addrs, firewalls and the network between this node and PostgreSQL (postgres.connect_timeout bounds each attempt)"
	case errors.Is(err, syscall.ECONNRESET), strings.Contains(msg, "EOF"):
		return "the server closed the connection", "that store_addrs names PostgreSQL's port, and the server's pg_hba.conf, max_connections and log"
	default:
		return "connection failed", "the host and port in store_addrs, that PostgreSQL runs, and that backend_tls.mode matches the server's ssl setting"
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
