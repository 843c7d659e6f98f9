package proccluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5"

	"github.com/pgmetasrv/metasrv/internal/netproxy"
)

// Config describes a Cluster.
type Config struct {
	Nodes int
	// DSN is the real PostgreSQL; never printed.
	DSN  string
	Node NodeConfig
	// ViaProxy puts a proxy between each node and PostgreSQL, so that one
	// node alone can be partitioned.
	ViaProxy bool
	Logger   *slog.Logger
}

// Cluster is a set of metasrv nodes as child processes on one PostgreSQL.
// Every node keeps its addresses across restarts, so the cluster's
// endpoint list never changes.
type Cluster struct {
	Nodes []*Node
	// Proxies[i] stands in front of PostgreSQL for Nodes[i]; nil entries
	// without Config.ViaProxy.
	Proxies []*netproxy.Proxy
}

// New prepares cfg.Nodes nodes (ports, proxies) without starting them. On
// error what was made is closed.
func New(ctx context.Context, cfg Config) (c *Cluster, err error) {
	c = &Cluster{}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	var upNet, upAddr string
	if cfg.ViaProxy {
		if upNet, upAddr, err = Upstream(cfg.DSN); err != nil {
			return nil, err
		}
	}
	for i := range cfg.Nodes {
		dsn := cfg.DSN
		var p *netproxy.Proxy
		if cfg.ViaProxy {
			if p, err = netproxy.Start(ctx, "127.0.0.1:0", upNet, upAddr, cfg.Logger); err != nil {
				return nil, err
			}
			c.Proxies = append(c.Proxies, p)
			if dsn, err = DSNVia(cfg.DSN, p.Addr()); err != nil {
				return nil, err
			}
		} else {
			c.Proxies = append(c.Proxies, nil)
		}
		n, err := NewNode(i, dsn, cfg.Node)
		if err != nil {
			return nil, err
		}
		c.Nodes = append(c.Nodes, n)
	}
	return c, nil
}

// Endpoints are the nodes' gRPC addresses.
func (c *Cluster) Endpoints() []string {
	out := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.GRPCAddr
	}
	return out
}

// Node is the node serving gRPC on addr, or nil.
func (c *Cluster) Node(addr string) *Node {
	for _, n := range c.Nodes {
		if n.GRPCAddr == addr {
			return n
		}
	}
	return nil
}

// Partition silently cuts n from PostgreSQL: its connections stop
// carrying bytes either way, and neither side is told.
func (c *Cluster) Partition(n *Node) error {
	p := c.Proxies[n.Index]
	if p == nil {
		return fmt.Errorf("%s runs without a proxy: no partition possible", n)
	}
	p.Partition()
	return nil
}

// Heal lets n's new connections through again; a connection that lost
// bytes in the partition stays cut.
func (c *Cluster) Heal(n *Node) {
	if p := c.Proxies[n.Index]; p != nil {
		p.Heal()
	}
}

// Close kills every node (a SIGKILL ends a paused process too), waits for
// them, and closes connections and proxies. Nothing is left running.
func (c *Cluster) Close() {
	for _, n := range c.Nodes {
		n.Close()
	}
	for _, p := range c.Proxies {
		if p != nil {
			_ = p.Close()
		}
	}
}

// Querier runs one query returning one row (a *pgx.Conn, a pool).
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// TerminateElection ends n's election session on PostgreSQL
// (pg_terminate_backend), found by its application_name, which metasrv
// sets to metasrv-election-<gRPC address>.
func TerminateElection(ctx context.Context, q Querier, n *Node) error {
	var killed int
	err := q.QueryRow(ctx,
		"SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
		"metasrv-election-"+n.GRPCAddr).Scan(&killed)
	if err != nil {
		return fmt.Errorf("pg_terminate_backend of %s's election session: %w", n.GRPCAddr, err)
	}
	if killed == 0 {
		return errors.New("no election session of the leader " + n.GRPCAddr + " found in pg_stat_activity")
	}
	return nil
}
