package chaos

import (
	"context"
	"testing"

	"github.com/pgmetasrv/metasrv/internal/proccluster"
)

// node is one metasrv process slot of the cluster (a proccluster.Node: a
// fixed gRPC and HTTP port and a fixed PostgreSQL address, its own proxy),
// filled by a process that the nemesis may kill, pause and restart.
type node struct {
	*proccluster.Node
	idx      int
	grpcAddr string
}

func newNode(idx int, storeDSN string, cfg proccluster.NodeConfig) (*node, error) {
	n, err := proccluster.NewNode(idx, storeDSN, cfg)
	if err != nil {
		return nil, err
	}
	return &node{Node: n, idx: idx, grpcAddr: n.GRPCAddr}, nil
}

// start launches a process in the slot; see proccluster.Node.Start.
func (n *node) start() error { return n.Start() }

// kill SIGKILLs the process and waits until it is gone.
func (n *node) kill() error { return n.Kill() }

// pause freezes the process (SIGSTOP); resume thaws it.
func (n *node) pause() error  { return n.Pause() }
func (n *node) resume() error { return n.Resume() }

// running reports whether a process fills the slot (paused counts).
func (n *node) running() bool  { return n.Running() }
func (n *node) isPaused() bool { return n.Paused() }

// stop ends the process for good at the end of the test. Safe to call on
// an empty slot and twice.
func (n *node) stop() { n.Close() }

// serving reports whether the node's gRPC port accepts connections.
func (n *node) serving(ctx context.Context) bool { return n.Serving(ctx) }

// logTail is the end of the node's log, for failure messages.
func (n *node) logTail(max int) string { return n.LogTail(max) }

// requireNoCrash fails t if any node exited without the nemesis killing it.
func requireNoCrash(t *testing.T, nodes []*node) {
	t.Helper()
	for _, n := range nodes {
		if err := n.Crashed(); err != nil {
			t.Fatalf("%v\nlog tail:\n%s", err, n.logTail(4000))
		}
	}
}
