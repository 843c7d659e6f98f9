package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/pgmetasrv/metasrv/internal/netproxy"
	"github.com/pgmetasrv/metasrv/pkg/config"
	"github.com/pgmetasrv/metasrv/pkg/postgres"
)

// benchCluster is a metasrv cluster of child processes on a scratch schema,
// for the failover benchmark. Every child runs in its own process group so
// it, and anything it might start, can be killed as a whole.
type benchCluster struct {
	binary   string
	dsn      string // the real PostgreSQL; never printed
	schema   string
	lockID   int64
	lease    time.Duration
	campaign time.Duration
	logDir   string
	viaProxy bool
	logger   *slog.Logger
	// upstream is PostgreSQL's address for the proxies.
	upstreamNet, upstreamAddr string

	nodes []*benchNode
}

// benchNode is one child. Its addresses stay the same across restarts, so
// the cluster's endpoint list never changes.
type benchNode struct {
	idx      int
	grpcAddr string
	httpAddr string
	proxy    *netproxy.Proxy // nil unless the cluster runs via proxies
	conn     *grpc.ClientConn
	cmd      *exec.Cmd
	exited   chan struct{} // closed when the process has been waited for
	stopped  bool          // SIGSTOPped and not yet continued
}

func (n *benchNode) name() string { return n.grpcAddr }

// running reports whether the node has a live process.
func (n *benchNode) running() bool {
	if n.cmd == nil {
		return false
	}
	select {
	case <-n.exited:
		return false
	default:
		return true
	}
}

// freeLocalAddr picks a free 127.0.0.1 port.
func freeLocalAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// newBenchCluster prepares n nodes (ports, proxies, gRPC connections)
// without starting them.
func newBenchCluster(ctx context.Context, c *benchCluster, n int) error {
	if c.viaProxy {
		o := config.Default()
		o.Backend, o.StoreAddrs = config.BackendPostgres, []string{c.dsn}
		cc, err := postgres.ConnConfig(o, "")
		if err != nil {
			return err
		}
		if len(cc.Fallbacks) > 0 && cc.Fallbacks[0].Host != cc.Host {
			return errors.New("--fault partition proxies one PostgreSQL host: give --store-addrs a single host")
		}
		c.upstreamNet, c.upstreamAddr = "tcp", net.JoinHostPort(cc.Host, strconv.Itoa(int(cc.Port)))
		if strings.HasPrefix(cc.Host, "/") {
			c.upstreamNet, c.upstreamAddr = "unix", filepath.Join(cc.Host, ".s.PGSQL."+strconv.Itoa(int(cc.Port)))
		}
	}
	for i := range n {
		node := &benchNode{idx: i}
		var err error
		if node.grpcAddr, err = freeLocalAddr(); err != nil {
			return err
		}
		if node.httpAddr, err = freeLocalAddr(); err != nil {
			return err
		}
		if c.viaProxy {
			node.proxy, err = netproxy.Start(ctx, "127.0.0.1:0", c.upstreamNet, c.upstreamAddr, c.logger)
			if err != nil {
				return err
			}
		}
		node.conn, err = grpc.NewClient(node.grpcAddr,
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			// A restarted node must be reachable again at once, not after
			// gRPC's default backoff of up to two minutes.
			grpc.WithConnectParams(grpc.ConnectParams{
				Backoff:           backoff.Config{BaseDelay: 20 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 250 * time.Millisecond},
				MinConnectTimeout: time.Second,
			}))
		if err != nil {
			return err
		}
		c.nodes = append(c.nodes, node)
	}
	return nil
}

// childDSN is the store address a node is started with: PostgreSQL itself,
// or the node's proxy in front of it.
func (c *benchCluster) childDSN(n *benchNode) (string, error) {
	if n.proxy == nil {
		return c.dsn, nil
	}
	host, port, _ := net.SplitHostPort(n.proxy.Addr())
	if strings.HasPrefix(c.dsn, "postgres://") || strings.HasPrefix(c.dsn, "postgresql://") {
		u, err := url.Parse(c.dsn)
		if err != nil {
			return "", errors.New("--store-addrs is not a valid URL")
		}
		q := u.Query()
		q.Del("host")
		q.Del("port")
		u.RawQuery = q.Encode()
		u.Host = n.proxy.Addr()
		return u.String(), nil
	}
	// key=value form: a later keyword wins.
	return c.dsn + " host=" + host + " port=" + port, nil
}

// start launches node n's process and waits until its gRPC server answers.
func (c *benchCluster) start(ctx context.Context, n *benchNode) error {
	dsn, err := c.childDSN(n)
	if err != nil {
		return err
	}
	logPath := filepath.Join(c.logDir, fmt.Sprintf("node%d.log", n.idx))
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("node %d log: %w", n.idx, err)
	}
	defer logFile.Close()
	fmt.Fprintf(logFile, "=== %s bench: starting node %d\n", time.Now().Format(time.RFC3339Nano), n.idx)
	cmd := exec.Command(c.binary, "start",
		"--backend", config.BackendPostgres,
		"--store-addrs", dsn,
		"--meta-schema-name", c.schema,
		"--meta-election-lock-id", strconv.FormatInt(c.lockID, 10),
		"--grpc-bind-addr", n.grpcAddr,
		"--http-addr", n.httpAddr,
	)
	cmd.Env = append(childEnviron(),
		"METASRV_ELECTION__LEASE="+c.lease.String(),
		"METASRV_ELECTION__CAMPAIGN_INTERVAL="+c.campaign.String())
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Own process group, killed as a whole at cleanup; and killed by the
	// kernel should this process die without cleaning up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start node %d (%s): %w", n.idx, c.binary, err)
	}
	n.cmd, n.exited, n.stopped = cmd, make(chan struct{}), false
	exited := n.exited
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	return c.waitServing(ctx, n, 60*time.Second)
}

// childEnviron is this process's environment without METASRV_ settings,
// which would otherwise configure the children behind the benchmark's back.
func childEnviron() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "METASRV_") {
			env = append(env, kv)
		}
	}
	return env
}

// waitServing polls the node's gRPC health until it answers SERVING.
func (c *benchCluster) waitServing(ctx context.Context, n *benchNode, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	health := healthpb.NewHealthClient(n.conn)
	for {
		cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		resp, err := health.Check(cctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return nil
		}
		select {
		case <-n.exited:
			return fmt.Errorf("node %d exited while starting; its log: %s", n.idx, filepath.Join(c.logDir, fmt.Sprintf("node%d.log", n.idx)))
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("node %d did not serve within %s", n.idx, timeout)
		}
	}
}

// signal sends sig to node n's process group.
func (n *benchNode) signal(sig syscall.Signal) error {
	if !n.running() {
		return fmt.Errorf("node %d is not running", n.idx)
	}
	if err := syscall.Kill(-n.cmd.Process.Pid, sig); err != nil {
		return fmt.Errorf("signal %s to node %d: %w", sig, n.idx, err)
	}
	switch sig {
	case syscall.SIGSTOP:
		n.stopped = true
	case syscall.SIGCONT:
		n.stopped = false
	}
	return nil
}

// waitExit waits for node n's process to end, killing it after timeout.
func (n *benchNode) waitExit(ctx context.Context, timeout time.Duration) error {
	if n.cmd == nil {
		return nil
	}
	select {
	case <-n.exited:
		return nil
	case <-ctx.Done():
	case <-time.After(timeout):
	}
	_ = syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
	<-n.exited
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return fmt.Errorf("node %d did not exit within %s; killed", n.idx, timeout)
}

// close kills every child (a SIGKILL ends a stopped process too), waits for
// them, closes proxies and connections, and drops the scratch schema. It is
// what runs on Ctrl-C and on any error: nothing may be left behind.
func (c *benchCluster) close(admin func(ctx context.Context, sql string) error) error {
	for _, n := range c.nodes {
		if n.cmd != nil {
			_ = syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
			<-n.exited
		}
		if n.proxy != nil {
			_ = n.proxy.Close()
		}
		if n.conn != nil {
			_ = n.conn.Close()
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	if err := admin(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{c.schema}.Sanitize()+" CASCADE"); err != nil {
		return fmt.Errorf("drop the benchmark's schema %s: %w", c.schema, err)
	}
	return nil
}
