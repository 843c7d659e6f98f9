package proccluster

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// NodeConfig is what every metasrv process of a cluster shares.
type NodeConfig struct {
	// Binary is the metasrv binary; nodes run `Binary start`.
	Binary string
	Schema string
	// LockID is meta_election_lock_id; 0 leaves the default.
	LockID int64
	// Env holds METASRV_ settings beyond the addresses (election timings).
	Env []string
	// Args are further flags of `metasrv start`.
	Args   []string
	LogDir string
}

// Node is one metasrv process slot: a fixed gRPC and HTTP address and a
// fixed PostgreSQL address, filled by a process that may be killed, paused
// and restarted. Its log (node-<index>.log in LogDir) collects every run.
type Node struct {
	Slot
	Index    int
	GRPCAddr string
	HTTPAddr string
	// StoreDSN is the store address the node runs with (PostgreSQL, or a
	// proxy in front of it). It carries the password: never logged, and
	// passed in the environment, so that it shows in no command line.
	StoreDSN string
	LogPath  string
	cfg      NodeConfig

	connMu sync.Mutex
	conn   *grpc.ClientConn
}

// NewNode prepares slot idx on two free ports without starting it.
func NewNode(idx int, storeDSN string, cfg NodeConfig) (*Node, error) {
	ports, err := FreePorts(2)
	if err != nil {
		return nil, err
	}
	n := &Node{
		Index:    idx,
		GRPCAddr: net.JoinHostPort("127.0.0.1", ports[0]),
		HTTPAddr: net.JoinHostPort("127.0.0.1", ports[1]),
		StoreDSN: storeDSN,
		LogPath:  filepath.Join(cfg.LogDir, fmt.Sprintf("node-%d.log", idx)),
		cfg:      cfg,
	}
	n.Name = fmt.Sprintf("node %d (%s)", idx, n.GRPCAddr)
	return n, nil
}

// Start launches a metasrv process in the slot; it returns once started,
// not once serving (see WaitServing).
func (n *Node) Start() error {
	logFile, err := os.OpenFile(n.LogPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("%s: open log: %w", n, err)
	}
	// The child has its own copy; a file, not a pipe, so exec starts no
	// copying goroutine.
	defer logFile.Close()
	fmt.Fprintf(logFile, "\n===== start %s at %s =====\n", n, time.Now().Format(time.RFC3339Nano))
	args := []string{"start",
		"--backend", "postgres_store",
		"--meta-schema-name", n.cfg.Schema,
		"--grpc-bind-addr", n.GRPCAddr,
		"--grpc-server-addr", n.GRPCAddr,
		"--http-addr", n.HTTPAddr,
	}
	if n.cfg.LockID != 0 {
		args = append(args, "--meta-election-lock-id", strconv.FormatInt(n.cfg.LockID, 10))
	}
	cmd := exec.Command(n.cfg.Binary, append(args, n.cfg.Args...)...)
	cmd.Env = append(append(Environ(), n.cfg.Env...), "METASRV_STORE_ADDRS="+n.StoreDSN)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	return n.Slot.Start(cmd)
}

// Conn is a gRPC connection to the node, made on first use and kept across
// restarts: a restarted node is reachable again at once, not after gRPC's
// default backoff of up to two minutes.
func (n *Node) Conn() (*grpc.ClientConn, error) {
	n.connMu.Lock()
	defer n.connMu.Unlock()
	if n.conn != nil {
		return n.conn, nil
	}
	conn, err := grpc.NewClient(n.GRPCAddr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 20 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 250 * time.Millisecond},
			MinConnectTimeout: time.Second,
		}))
	if err != nil {
		return nil, err
	}
	n.conn = conn
	return conn, nil
}

// Close ends the process, if any, and closes the node's connection.
func (n *Node) Close() {
	n.Stop()
	n.connMu.Lock()
	defer n.connMu.Unlock()
	if n.conn != nil {
		_ = n.conn.Close()
		n.conn = nil
	}
}

// Serving reports whether the node answers gRPC health checks with SERVING.
// An open port is not enough: a node binds its addresses before it has
// connected to PostgreSQL and migrated.
func (n *Node) Serving(ctx context.Context) bool {
	conn, err := n.Conn()
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	return err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING
}

// WaitServing polls the node's gRPC health until it answers SERVING, the
// process exits, or timeout.
func (n *Node) WaitServing(ctx context.Context, timeout time.Duration) error {
	conn, err := n.Conn()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	health := healthpb.NewHealthClient(conn)
	exited := n.Exited()
	for {
		cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		resp, err := health.Check(cctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("%s exited while starting; its log: %s", n, n.LogPath)
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not serve within %s", n, timeout)
		}
	}
}

// LogTail is the end of the node's log, for failure messages.
func (n *Node) LogTail(max int) string {
	b, err := os.ReadFile(n.LogPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	if len(b) > max {
		b = b[len(b)-max:]
		if i := strings.IndexByte(string(b), '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return string(b)
}
