package ddlload

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/pgmetasrv/metasrv/internal/greptimefake"
	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
)

// datanodes are the fake datanodes of a run, ids 1..N.
type datanodes struct {
	nodes    []*greptimefake.Node
	stopOnce sync.Once
}

// startDatanodes makes and starts cfg.Datanodes region servers, each with
// its own connection to the metasrv (a datanode process has its own channel
// manager), bound to cfg.DatanodeHost on a free port. On an error the ones
// started are stopped.
func startDatanodes(ctx context.Context, cfg Config) (*datanodes, error) {
	d := &datanodes{}
	for i := range cfg.Datanodes {
		id := uint64(i + 1)
		n, err := greptimefake.New(greptimefake.Config{
			Endpoints:    cfg.Endpoints,
			Role:         metapb.Role_DATANODE,
			ID:           id,
			Addr:         net.JoinHostPort(cfg.DatanodeHost, "0"),
			RegionServer: true,
			Compressor:   cfg.Compressor,
			Logger:       cfg.Logger.With("datanode_id", id),
		})
		if err != nil {
			d.stop()
			return nil, fmt.Errorf("ddlload: datanode %d: %w", id, err)
		}
		if err := n.Start(ctx); err != nil {
			n.Stop()
			d.stop()
			return nil, fmt.Errorf("ddlload: start datanode %d: %w", id, err)
		}
		d.nodes = append(d.nodes, n)
	}
	return d, nil
}

// waitLeases waits until every datanode has received a region lease: the
// answer to a heartbeat that left its node info with the leader, after
// which the selector counts it alive. It fails after timeout, naming the
// datanodes still waiting and what their counters say.
func (d *datanodes) waitLeases(ctx context.Context, timeout time.Duration) (Warmup, error) {
	begin := time.Now()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for _, n := range d.nodes {
		if n.LastLease() != nil {
			continue
		}
		select {
		case <-n.Leases():
		case <-deadline.C:
			return d.warmup(begin), fmt.Errorf("%w: %s within %s", ErrNoLease, d.pending(), timeout)
		case <-ctx.Done():
			return d.warmup(begin), fmt.Errorf("waiting for the datanodes' first leases: %w", context.Cause(ctx))
		}
	}
	return d.warmup(begin), nil
}

func (d *datanodes) warmup(begin time.Time) Warmup {
	w := Warmup{Seconds: time.Since(begin).Seconds()}
	for _, n := range d.nodes {
		if n.LastLease() != nil {
			w.Leased++
		}
	}
	return w
}

// pending describes the datanodes without a lease.
func (d *datanodes) pending() string {
	var parts []string
	for i, n := range d.nodes {
		if n.LastLease() != nil {
			continue
		}
		s := n.Stats()
		parts = append(parts, fmt.Sprintf("datanode %d (%s; leader %q, %d handshakes, %d heartbeats answered, %d errors, %d not-leader)",
			i+1, n.PeerAddr(), n.Leader(), s.Handshakes, s.Responses, s.Errors, s.NotLeader))
	}
	return fmt.Sprintf("%d of %d fake datanodes got none: %s", len(parts), len(d.nodes), strings.Join(parts, "; "))
}

// held is what every datanode holds now, for the checks.
func (d *datanodes) held() []heldRegions {
	out := make([]heldRegions, len(d.nodes))
	for i, n := range d.nodes {
		out[i] = heldRegions{id: uint64(i + 1), addr: n.PeerAddr(), regions: n.Regions()}
	}
	return out
}

// stop stops the datanodes in parallel (each may wait up to a second for
// the metasrv to end its stream). Safe to call twice.
func (d *datanodes) stop() {
	d.stopOnce.Do(func() {
		var wg sync.WaitGroup
		for _, n := range d.nodes {
			wg.Go(n.Stop)
		}
		wg.Wait()
	})
}
