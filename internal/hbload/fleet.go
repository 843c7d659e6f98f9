package hbload

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/pgmetasrv/metasrv/internal/greptimefake"
	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
)

// fleet is the nodes of a run, their pools and what watches them.
type fleet struct {
	cfg   Config
	pools []*pool
	nodes []*greptimefake.Node
	warns *warnings
	hs    *handshakeLog

	watchCtx  context.Context
	stopWatch context.CancelFunc
	watchers  sync.WaitGroup
	stopOnce  sync.Once
}

// nodeAddr is node id's advertised address, unique per node (a frontend's
// node-info key is a hash of it): 10.a.b.c:4001.
func nodeAddr(id uint64) string {
	return fmt.Sprintf("10.%d.%d.%d:4001", (id>>16)&0xff, (id>>8)&0xff, id&0xff)
}

// newFleet makes the pools and the nodes, ids 1..Nodes, without starting
// any.
func newFleet(cfg Config) (*fleet, error) {
	f := &fleet{cfg: cfg, warns: &warnings{}, hs: newHandshakeLog(cfg.Nodes)}
	f.watchCtx, f.stopWatch = context.WithCancel(context.Background())
	logger := f.warns.logger()
	for i := range cfg.Nodes {
		if i%cfg.ConnsPer == 0 {
			f.pools = append(f.pools, newPool())
		}
		p := f.pools[len(f.pools)-1]
		id := uint64(i + 1)
		n, err := greptimefake.New(greptimefake.Config{
			Endpoints:  cfg.Endpoints,
			Role:       cfg.Role,
			ID:         id,
			Addr:       nodeAddr(id),
			Conns:      p.conns,
			Logger:     logger,
			Compressor: cfg.Compressor,
			Latency:    &p.whole,
		})
		if err != nil {
			f.stop()
			return nil, err
		}
		f.nodes = append(f.nodes, n)
	}
	return f, nil
}

// start starts the nodes, spread evenly over ramp (all at once for 0), each
// with a watcher of its handshakes, and running until ctx ends or the fleet
// stops. It returns when the last has started, or ctx ended, or abort was
// closed.
func (f *fleet) start(ctx context.Context, ramp time.Duration, abort <-chan struct{}) error {
	begin := time.Now()
	for i, n := range f.nodes {
		if ramp > 0 {
			due := begin.Add(time.Duration(int64(ramp) * int64(i) / int64(len(f.nodes))))
			if wait := time.Until(due); wait > time.Millisecond {
				select {
				case <-time.After(wait):
				case <-ctx.Done():
					return context.Cause(ctx)
				case <-abort:
					return nil
				}
			}
		}
		if err := n.Start(ctx); err != nil {
			return fmt.Errorf("start node %d: %w", i+1, err)
		}
		f.watchers.Add(1)
		go func() {
			defer f.watchers.Done()
			f.watch(i, n)
		}()
	}
	return nil
}

// watch logs node i's handshakes until the fleet stops.
func (f *fleet) watch(i int, n *greptimefake.Node) {
	for {
		select {
		case hs := <-n.Handshakes():
			f.hs.add(i, hs)
		case <-f.watchCtx.Done():
			return
		}
	}
}

// counters sums the nodes' counters now.
func (f *fleet) counters() Counters {
	var c Counters
	for _, n := range f.nodes {
		s := n.Stats()
		c.Responses += s.Responses
		c.Handshakes += s.Handshakes
		c.Reconnects += s.Reconnects
		c.NotLeader += s.NotLeader
		c.Errors += s.Errors
	}
	return c
}

// answered is the beats answered so far on every pool, for progress.
func (f *fleet) answered() uint64 {
	var n uint64
	for _, p := range f.pools {
		n += p.answered.Load()
	}
	return n
}

// openWindow starts timing the beats sent from now on.
func (f *fleet) openWindow(now time.Time) {
	for _, p := range f.pools {
		p.window.Store(&window{start: now})
	}
}

// closeWindow stops timing and merges the pools' window records.
func (f *fleet) closeWindow() greptimefake.Latencies {
	var all greptimefake.Latencies
	for _, p := range f.pools {
		if w := p.window.Swap(nil); w != nil {
			all.Merge(w.hist.Snapshot())
		}
	}
	return all
}

// wholeRun merges the nodes' own histograms (one per pool).
func (f *fleet) wholeRun() greptimefake.Latencies {
	var all greptimefake.Latencies
	for _, p := range f.pools {
		all.Merge(p.whole.Snapshot())
	}
	return all
}

// stop stops every node (in parallel: each may wait up to a second for
// metasrv to end its stream), then the watchers, then closes the pools.
// Safe to call twice.
func (f *fleet) stop() {
	f.stopOnce.Do(func() {
		var wg sync.WaitGroup
		for _, n := range f.nodes {
			wg.Go(n.Stop)
		}
		wg.Wait()
		f.stopWatch()
		f.watchers.Wait()
		for _, p := range f.pools {
			p.conns.Close()
		}
	})
}

// handshakeLog records every node's handshakes: when each node first
// completed one, and what they all returned.
type handshakeLog struct {
	mu     sync.Mutex
	first  []time.Time // zero: none yet
	done   int
	last   time.Time     // the latest first handshake
	all    chan struct{} // closed when every node has handshaken
	counts Handshakes
}

func newHandshakeLog(nodes int) *handshakeLog {
	l := &handshakeLog{first: make([]time.Time, nodes), all: make(chan struct{})}
	l.counts.Intervals = map[string]uint64{}
	l.counts.RetryIntervals = map[string]uint64{}
	l.counts.Leaders = map[string]uint64{}
	if nodes == 0 {
		close(l.all)
	}
	return l
}

func (l *handshakeLog) add(i int, hs greptimefake.Handshake) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := &l.counts
	c.Total++
	c.Leaders[hs.Leader]++
	if hs.Default {
		c.WithoutConfig++
	} else {
		c.Intervals[msString(hs.Config.GetHeartbeatIntervalMs())]++
		c.RetryIntervals[msString(hs.Config.GetRetryIntervalMs())]++
	}
	if hs.Header.GetError().GetCode() == greptimefake.CodeNotLeader {
		c.NotLeader++
	}
	if l.first[i].IsZero() {
		l.first[i] = hs.At
		l.done++
		if hs.At.After(l.last) {
			l.last = hs.At
		}
		if l.done == len(l.first) {
			close(l.all)
		}
	}
}

// progress is how many nodes have handshaken, and when the last of them
// did its first.
func (l *handshakeLog) progress() (done int, last time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.done, l.last
}

// summary is a copy of the counts.
func (l *handshakeLog) summary() Handshakes {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.counts
	out.Intervals = maps.Clone(l.counts.Intervals)
	out.RetryIntervals = maps.Clone(l.counts.RetryIntervals)
	out.Leaders = maps.Clone(l.counts.Leaders)
	return out
}

func msString(ms uint64) string { return (time.Duration(ms) * time.Millisecond).String() }

// roleName is the role as the command line spells it.
func roleName(r metapb.Role) string {
	switch r {
	case metapb.Role_DATANODE:
		return "datanode"
	case metapb.Role_FRONTEND:
		return "frontend"
	case metapb.Role_FLOWNODE:
		return "flownode"
	}
	return r.String()
}
