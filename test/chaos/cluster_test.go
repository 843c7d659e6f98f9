package chaos

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/internal/netproxy"
	"github.com/pgmetasrv/metasrv/internal/pgtest"
	"github.com/pgmetasrv/metasrv/internal/proccluster"
	"github.com/pgmetasrv/metasrv/pkg/client"
	"github.com/pgmetasrv/metasrv/pkg/kv"
)

const (
	schemaName    = "chaos"
	tableName     = "greptime_metakv" // the default meta_table_name
	electionTable = tableName + "_election"
	lockID        = 1 // the default meta_election_lock_id
	probeKey      = "chaos/probe"
	// recoveryTimeout bounds how long the cluster may take to be whole again
	// after a fault: a leader that accepts writes and every node serving.
	// Generous, for a loaded 2-core machine; it is a liveness bound, not a
	// speed target.
	recoveryTimeout = 3 * time.Minute
)

// chaosCluster is three metasrv processes on one dedicated PostgreSQL, each
// node reaching PostgreSQL through its own proxy, so that one node alone
// can be cut off.
type chaosCluster struct {
	pg       *pgtest.Cluster
	adminDSN string // direct to PostgreSQL, bypassing every proxy
	pgAddr   string
	nodes    []*node
	proxies  []*netproxy.Proxy
	probe    *client.Client
	logger   *slog.Logger
}

type clusterOptions struct {
	nodes  int
	lease  time.Duration
	outDir string
	logger *slog.Logger
}

func newChaosCluster(t *testing.T, o clusterOptions) *chaosCluster {
	t.Helper()
	bin := buildMetasrv(t)
	// The speed settings of pgtest acknowledge commits before the WAL is
	// flushed; the durability check wants what an operator runs.
	pg := pgtest.NewCluster(t, pgtest.ClusterOptions{Conf: []string{"synchronous_commit=on"}})
	c := &chaosCluster{
		pg:       pg,
		adminDSN: pg.DSN(),
		pgAddr:   net.JoinHostPort("127.0.0.1", strconv.Itoa(pg.Port())),
		logger:   o.logger,
	}
	cfg := proccluster.NodeConfig{
		Binary: bin,
		Schema: schemaName,
		LogDir: o.outDir,
		Args:   []string{"--log-level", "info"},
		Env: []string{
			"METASRV_ELECTION__LEASE=" + o.lease.String(),
			"METASRV_ELECTION__CAMPAIGN_INTERVAL=" + (o.lease / 10).String(),
			"METASRV_ELECTION__CANDIDATE_LEASE=" + (3 * o.lease).String(),
		},
	}
	for i := range o.nodes {
		p, err := netproxy.Start(t.Context(), "127.0.0.1:0", "tcp", c.pgAddr, o.logger)
		require.NoError(t, err)
		c.proxies = append(c.proxies, p)
		dsn, err := proccluster.DSNVia(c.adminDSN, p.Addr())
		require.NoError(t, err)
		n, err := newNode(i, dsn, cfg)
		require.NoError(t, err)
		c.nodes = append(c.nodes, n)
	}
	// Cleanups run last-in first-out: nodes die before their proxies close,
	// and both before pgtest removes PostgreSQL.
	t.Cleanup(func() {
		for _, p := range c.proxies {
			_ = p.Close()
		}
	})
	t.Cleanup(func() {
		for _, n := range c.nodes {
			n.stop()
		}
	})
	for _, n := range c.nodes {
		require.NoError(t, n.start())
	}
	c.waitServing(t)
	probe, err := client.New(t.Context(), client.Config{Endpoints: c.endpoints(), ClientID: "chaos-probe"}, o.logger)
	require.NoError(t, err)
	t.Cleanup(func() { _ = probe.Close() })
	c.probe = probe
	return c
}

func (c *chaosCluster) endpoints() []string {
	out := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.grpcAddr
	}
	return out
}

// waitServing waits until every node's gRPC port accepts connections.
func (c *chaosCluster) waitServing(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(recoveryTimeout)
	for {
		requireNoCrash(t, c.nodes)
		all := true
		for _, n := range c.nodes {
			if !n.serving(t.Context()) {
				all = false
				break
			}
		}
		if all {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the nodes did not all serve within %s\n%s", recoveryTimeout, c.logTails())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// leader returns the node that holds the election lock now, according to
// PostgreSQL itself (the election row and pg_locks), and its term.
func (c *chaosCluster) leader(ctx context.Context) (*node, int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.adminDSN)
	if err != nil {
		return nil, 0, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer conn.Close(context.Background())
	var (
		term int64
		addr string
	)
	err = conn.QueryRow(ctx, `SELECT e.term, e.leader_addr FROM `+schemaName+`.`+electionTable+` e
		WHERE e.lock_id = $1 AND EXISTS (SELECT 1 FROM pg_catalog.pg_locks l
			WHERE l.locktype = 'advisory' AND l.classid = 0 AND l.objid = $1 AND l.objsubid = 1
			  AND l.granted AND l.pid = e.backend_pid)`, lockID).Scan(&term, &addr)
	if err != nil {
		return nil, 0, fmt.Errorf("read the election row: %w", err)
	}
	for _, n := range c.nodes {
		if n.grpcAddr == addr {
			return n, term, nil
		}
	}
	return nil, 0, fmt.Errorf("the election row names %q, which is no node of this cluster", addr)
}

// waitHealthy waits until every node serves and a leader accepts a write,
// and returns that leader. Failing to get there within recoveryTimeout is a
// liveness failure of metasrv and fails the test.
func (c *chaosCluster) waitHealthy(t *testing.T, after string) (*node, int64) {
	t.Helper()
	c.waitServing(t)
	deadline := time.Now().Add(recoveryTimeout)
	var lastErr error
	for {
		requireNoCrash(t, c.nodes)
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		_, err := c.probe.Put(ctx, kv.PutRequest{Key: []byte(probeKey), Value: []byte(time.Now().Format(time.RFC3339Nano))})
		cancel()
		if err == nil {
			l, term, lerr := c.leader(t.Context())
			if lerr == nil {
				return l, term
			}
			err = lerr
		}
		lastErr = err
		if time.Now().After(deadline) {
			t.Fatalf("no leader accepted a write within %s after %s (last error: %v)\n%s", recoveryTimeout, after, lastErr, c.logTails())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// heal partitions nothing any more for node i. The proxy is replaced, not
// healed in place: closing it while it still drops traffic ends every
// connection that lost bytes without ever forwarding another byte of it, as
// a real network would (TCP never delivers a later byte without the earlier
// ones); the new proxy listens on the same address.
func (c *chaosCluster) heal(ctx context.Context, i int) error {
	old := c.proxies[i]
	if !old.Partitioned() {
		return nil
	}
	addr := old.Addr()
	if err := old.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("close proxy of node %d: %w", i, err)
	}
	var err error
	for attempt := 0; attempt < 100; attempt++ {
		var p *netproxy.Proxy
		if p, err = netproxy.Start(ctx, addr, "tcp", c.pgAddr, c.logger); err == nil {
			c.proxies[i] = p
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("reopen proxy of node %d on %s: %w", i, addr, err)
}

// healAll undoes every fault still in place: thaws paused nodes, restarts
// dead ones, reconnects partitioned ones.
func (c *chaosCluster) healAll(t *testing.T) {
	t.Helper()
	for i, n := range c.nodes {
		require.NoError(t, c.heal(t.Context(), i))
		if n.isPaused() {
			require.NoError(t, n.resume())
		}
		if !n.running() {
			require.NoError(t, n.start())
		}
	}
}

// storedUnder reads every pair whose key starts with prefix straight from
// PostgreSQL, bypassing metasrv. The range is bytewise, as the KV table is.
func (c *chaosCluster) storedUnder(ctx context.Context, prefix string) (map[string]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.adminDSN)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, `SELECT k, v FROM `+schemaName+`.`+tableName+` WHERE k >= $1 AND k < $2`,
		[]byte(prefix), kv.PrefixEnd([]byte(prefix)))
	if err != nil {
		return nil, fmt.Errorf("read keys under %q: %w", prefix, err)
	}
	out := map[string]string{}
	var k, v []byte
	_, err = pgx.ForEachRow(rows, []any{&k, &v}, func() error {
		out[string(k)] = string(v)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read keys under %q: %w", prefix, err)
	}
	return out, nil
}

func (c *chaosCluster) logTails() string {
	var b strings.Builder
	for _, n := range c.nodes {
		fmt.Fprintf(&b, "--- %s log tail ---\n%s\n", n, n.logTail(3000))
	}
	return b.String()
}
