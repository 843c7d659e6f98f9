package failoverbench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/pgmetasrv/metasrv/internal/proccluster"
	metasrvv1 "github.com/pgmetasrv/metasrv/pkg/api/metasrv/v1"
)

// The failover benchmark talks to the nodes with the raw gRPC Store API
// rather than pkg/client: it must see which node acknowledged a write under
// which term (the response header), and its pinned writer must never follow
// a NOT_LEADER hint away from the node under test.

// firstNewTermWrite writes value under key through the nodes in cands until
// one acknowledges it under a term above oldTerm, and returns when that
// acknowledgement arrived. A NOT_LEADER hint is followed when it names one
// of cands; otherwise the nodes are tried in turn.
func firstNewTermWrite(ctx context.Context, cands []*proccluster.Node, key, value []byte, oldTerm int64) (at time.Time, leader string, term int64, err error) {
	byAddr := map[string]*proccluster.Node{}
	for _, n := range cands {
		byAddr[n.GRPCAddr] = n
	}
	var hint *proccluster.Node
	next := 0
	for {
		if err := ctx.Err(); err != nil {
			return time.Time{}, "", 0, err
		}
		n := hint
		if n == nil {
			n = cands[next%len(cands)]
			next++
		}
		hint = nil
		conn, err := n.Conn()
		if err != nil {
			return time.Time{}, "", 0, err
		}
		actx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		resp, err := metasrvv1.NewStoreClient(conn).Put(actx, &metasrvv1.PutRequest{Key: key, Value: value})
		cancel()
		if err == nil {
			if t := resp.GetHeader().GetTerm(); t > oldTerm {
				return time.Now(), n.GRPCAddr, t, nil
			}
			// The old leader still holds its term (its session was cut but
			// no one has taken over yet): legitimately so, not a failover.
		} else if info, ok := metasrvv1.ErrorInfoOf(err); ok && info.GetReason() == metasrvv1.ReasonNotLeader {
			hint = byAddr[info.GetMetadata()[metasrvv1.MetadataLeader]]
		}
		if hint == nil {
			select {
			case <-ctx.Done():
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
}

// pinnedWrite is one write sent by the pinned writer to the deposed leader.
type pinnedWrite struct {
	value []byte
	sent  time.Time
	acked bool
	term  int64  // the term in the acknowledgement's header
	prev  []byte // the value the write replaced, as the node reported it
}

// pinnedWriters keep writing to one node only (the leader about to be
// faulted), a few at a time so that requests are queued at the moment a
// paused node wakes up, until stop is closed. Every write replaces key and
// asks for the previous value.
type pinnedWriters struct {
	wg     sync.WaitGroup
	mu     sync.Mutex
	writes []pinnedWrite
}

const (
	pinnedParallel = 4
)

func startPinnedWriters(ctx context.Context, n *proccluster.Node, key []byte, timeout time.Duration, stop <-chan struct{}) (*pinnedWriters, error) {
	conn, err := n.Conn()
	if err != nil {
		return nil, err
	}
	p := &pinnedWriters{}
	store := metasrvv1.NewStoreClient(conn)
	for w := range pinnedParallel {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for seq := 0; ; seq++ {
				select {
				case <-stop:
					return
				case <-ctx.Done():
					return
				default:
				}
				pw := pinnedWrite{value: fmt.Appendf(nil, "old-%d-%d", w, seq), sent: time.Now()}
				wctx, cancel := context.WithTimeout(ctx, timeout)
				resp, err := store.Put(wctx, &metasrvv1.PutRequest{Key: key, Value: pw.value, PrevKv: true})
				cancel()
				if err == nil {
					pw.acked, pw.term, pw.prev = true, resp.GetHeader().GetTerm(), resp.GetPrevKv().GetValue()
				}
				p.mu.Lock()
				p.writes = append(p.writes, pw)
				p.mu.Unlock()
				if err != nil {
					// A refusal comes back at once; do not spin on it.
					select {
					case <-stop:
						return
					case <-time.After(10 * time.Millisecond):
					}
				}
			}
		}()
	}
	return p, nil
}

// wait returns every write once the writers have stopped.
func (p *pinnedWriters) wait() []pinnedWrite {
	p.wg.Wait()
	return p.writes
}

// fencingViolations returns the deposed leader's writes that were accepted
// after the new leader's first write (newAck, value newValue): by real time
// (sent after newAck, so linearizability puts it after the new term's
// write), or by data (it replaced newValue, so it committed after it). An
// acknowledgement under a term above oldTerm is the node's own new term, if
// it won again, and is legitimate.
func fencingViolations(writes []pinnedWrite, oldTerm int64, newAck time.Time, newValue []byte) []pinnedWrite {
	var bad []pinnedWrite
	for _, w := range writes {
		if !w.acked || w.term > oldTerm {
			continue
		}
		if w.sent.After(newAck) || string(w.prev) == string(newValue) {
			bad = append(bad, w)
		}
	}
	return bad
}

func describeViolation(w pinnedWrite, newAck time.Time) string {
	return fmt.Sprintf("write %q acknowledged under term %d, sent %s after the new leader's first write, replacing %q",
		w.value, w.term, w.sent.Sub(newAck).Round(time.Millisecond), w.prev)
}
