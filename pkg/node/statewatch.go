package node

import (
	"context"
	"fmt"
	"sync"

	"github.com/pgmetasrv/metasrv/pkg/metasrv"
)

// stateWatch lets callers wait for the node's state instead of polling it:
// every change closes the channel waiters hold and hands out a new one.
type stateWatch struct {
	mu      sync.Mutex
	state   metasrv.State
	changed chan struct{}
}

func newStateWatch() *stateWatch { return &stateWatch{changed: make(chan struct{})} }

// set is the core's OnStateChange: called in order, from one goroutine at a time.
func (w *stateWatch) set(s metasrv.State) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.state = s
	close(w.changed)
	w.changed = make(chan struct{})
}

func (w *stateWatch) snapshot() (metasrv.State, <-chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.state, w.changed
}

// WaitState returns once the node is in state want, or with ctx's error
// (naming the state it is in) when ctx ends first.
func (n *Node) WaitState(ctx context.Context, want metasrv.State) error {
	for {
		s, changed := n.states.snapshot()
		if s == want {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("node: waiting for state %s (now %s): %w", want, s, ctx.Err())
		}
	}
}
