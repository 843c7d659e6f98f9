package chaos

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// nodeConfig is what every metasrv process of a cluster shares.
type nodeConfig struct {
	bin    string
	schema string
	env    []string // METASRV_ settings beyond addresses (election timings)
	logDir string
}

// node is one metasrv process slot: a fixed gRPC and HTTP port and a fixed
// PostgreSQL address (its own proxy), filled by a process that the nemesis
// may kill, pause and restart.
type node struct {
	idx      int
	grpcAddr string
	httpAddr string
	storeDSN string // through this node's proxy; carries the password, never logged
	cfg      nodeConfig
	logPath  string

	mu     sync.Mutex
	proc   *exec.Cmd
	done   chan struct{} // closed when proc exited
	exit   error
	paused bool
	killed bool // the exit, if any, was ours
}

func newNode(idx int, storeDSN string, cfg nodeConfig) (*node, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	return &node{
		idx:      idx,
		grpcAddr: net.JoinHostPort("127.0.0.1", ports[0]),
		httpAddr: net.JoinHostPort("127.0.0.1", ports[1]),
		storeDSN: storeDSN,
		cfg:      cfg,
		logPath:  fmt.Sprintf("%s/node-%d.log", cfg.logDir, idx),
	}, nil
}

func (n *node) String() string { return fmt.Sprintf("node %d (%s)", n.idx, n.grpcAddr) }

// start launches a process in the slot. The process leads its own process
// group, so signals reach anything it forks, and dies with the test binary
// (Pdeathsig) even if the test is killed before its cleanup runs.
func (n *node) start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.proc != nil && !isClosed(n.done) {
		return fmt.Errorf("%s is already running", n)
	}
	logFile, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("%s: open log: %w", n, err)
	}
	fmt.Fprintf(logFile, "\n===== chaos: start %s at %s =====\n", n, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(n.cfg.bin, "start",
		"--backend", "postgres_store",
		"--meta-schema-name", n.cfg.schema,
		"--grpc-bind-addr", n.grpcAddr,
		"--grpc-server-addr", n.grpcAddr,
		"--http-addr", n.httpAddr,
		"--log-level", "info",
	)
	// The DSN goes through the environment so that it shows in no command
	// line (ps) and no test log.
	cmd.Env = append(append(nodeEnviron(), n.cfg.env...), "METASRV_STORE_ADDRS="+n.storeDSN)
	// A file, not a pipe: exec then starts no copying goroutine.
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("%s: start: %w", n, err)
	}
	done := make(chan struct{})
	n.proc, n.done, n.exit, n.paused, n.killed = cmd, done, nil, false, false
	go func() {
		err := cmd.Wait()
		logFile.Close()
		n.mu.Lock()
		n.exit = err
		n.mu.Unlock()
		close(done)
	}()
	return nil
}

// signal sends sig to the process group of the running process.
func (n *node) signal(sig syscall.Signal) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.proc == nil || isClosed(n.done) {
		return fmt.Errorf("%s is not running", n)
	}
	if err := syscall.Kill(-n.proc.Process.Pid, sig); err != nil {
		return fmt.Errorf("%s: %s: %w", n, sig, err)
	}
	switch sig {
	case syscall.SIGSTOP:
		n.paused = true
	case syscall.SIGCONT:
		n.paused = false
	case syscall.SIGKILL:
		n.killed = true
	}
	return nil
}

// kill SIGKILLs the process and waits until it is gone.
func (n *node) kill() error {
	if err := n.signal(syscall.SIGKILL); err != nil {
		return err
	}
	n.mu.Lock()
	done := n.done
	n.mu.Unlock()
	<-done
	return nil
}

// pause freezes the process (SIGSTOP); resume thaws it.
func (n *node) pause() error  { return n.signal(syscall.SIGSTOP) }
func (n *node) resume() error { return n.signal(syscall.SIGCONT) }

// running reports whether a process fills the slot (paused counts).
func (n *node) running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.proc != nil && !isClosed(n.done)
}

func (n *node) isPaused() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.paused && n.proc != nil && !isClosed(n.done)
}

// crashed returns why the process exited on its own, or nil when it runs,
// never ran, or was killed by the nemesis.
func (n *node) crashed() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.proc == nil || !isClosed(n.done) || n.killed {
		return nil
	}
	return fmt.Errorf("%s exited by itself: %v", n, n.exit)
}

// stop ends the process for good at the end of the test: thaw it if paused,
// kill it, wait. Safe to call on an empty slot and twice.
func (n *node) stop() {
	if !n.running() {
		return
	}
	_ = n.signal(syscall.SIGCONT)
	_ = n.kill()
}

// serving reports whether the node's gRPC port accepts connections.
func (n *node) serving(ctx context.Context) bool {
	var d net.Dialer
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", n.grpcAddr)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// logTail is the end of the node's log, for failure messages.
func (n *node) logTail(max int) string {
	b, err := os.ReadFile(n.logPath)
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

// nodeEnviron is this process's environment without any METASRV_ variable:
// metasrv refuses unknown METASRV_ keys (this suite's own knobs, the test
// DSN) and must see only the settings the harness gives it.
func nodeEnviron() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "METASRV_") {
			env = append(env, kv)
		}
	}
	return env
}

func isClosed(ch chan struct{}) bool {
	if ch == nil {
		return false
	}
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// freePorts picks n distinct free TCP ports on 127.0.0.1. A node keeps its
// ports across restarts, so that clients and leader hints stay valid.
func freePorts(n int) ([]string, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	ports := make([]string, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("pick a free port: %w", err)
		}
		lns = append(lns, ln)
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		ports = append(ports, port)
	}
	return ports, nil
}

// requireNoCrash fails t if any node exited without the nemesis killing it.
func requireNoCrash(t *testing.T, nodes []*node) {
	t.Helper()
	for _, n := range nodes {
		if err := n.crashed(); err != nil {
			t.Fatalf("%v\nlog tail:\n%s", err, n.logTail(4000))
		}
	}
}
