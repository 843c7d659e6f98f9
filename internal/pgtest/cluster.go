package pgtest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// ClusterOptions configure a dedicated cluster.
type ClusterOptions struct {
	// Conf lines are appended to postgresql.conf, e.g. "ssl=on",
	// "ssl_cert_file='server.crt'". Relative paths resolve against the data
	// directory, where Files are written.
	Conf []string
	// Files are written into the data directory (mode 0600, owned by the
	// server's OS user, as PostgreSQL demands of a key), keyed by file name.
	Files map[string][]byte
	// HBA lines come first in pg_hba.conf, so they take precedence over the
	// defaults (local trust; host scram-sha-256 from 127.0.0.1 and ::1).
	HBA []string
}

// Cluster is a PostgreSQL cluster owned by one test, which may stop and
// start it. It listens on 127.0.0.1 on the same port for its whole life.
type Cluster struct {
	mu  sync.Mutex
	srv *localServer
}

// NewCluster initialises and starts a dedicated cluster, removed when the
// test ends. It needs the local PostgreSQL binaries: without them the test is
// skipped (failed under CI=true).
func NewCluster(t testing.TB, opts ClusterOptions) *Cluster {
	t.Helper()
	srv, err := newLocalServer(opts)
	if errors.Is(err, errNoBinaries) {
		unavailable(t, err)
	}
	if err != nil {
		t.Fatalf("pgtest: new cluster: %v", err)
	}
	c := &Cluster{srv: srv}
	t.Cleanup(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if err := c.srv.destroy(); err != nil {
			t.Errorf("pgtest: remove cluster: %v", err)
		}
	})
	c.Start(t)
	return c
}

// DSN is a superuser postgres:// URL to the cluster's postgres database,
// with sslmode=disable (override it to test TLS).
func (c *Cluster) DSN() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.srv.dsn("postgres")
}

// Port is the TCP port the cluster listens on at 127.0.0.1.
func (c *Cluster) Port() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.srv.port
}

// Start starts a stopped cluster and waits until it accepts connections.
func (c *Cluster) Start(t testing.TB) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := c.srv.start(ctx); err != nil {
		t.Fatalf("pgtest: start cluster: %v", err)
	}
}

// Stop shuts the cluster down (fast shutdown: clients are disconnected).
// Stopping a stopped cluster does nothing.
func (c *Cluster) Stop(t testing.TB) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.srv.stop(); err != nil {
		t.Fatalf("pgtest: stop cluster: %v", err)
	}
}

// Restart stops and starts the cluster; open connections are broken.
func (c *Cluster) Restart(t testing.TB) {
	t.Helper()
	c.Stop(t)
	c.Start(t)
}
