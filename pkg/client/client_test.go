package client

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/status"

	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/kv/kvtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func put(t *testing.T, c *Client, k, v string) {
	t.Helper()
	_, err := c.Put(context.Background(), kv.PutRequest{Key: []byte(k), Value: []byte(v)})
	require.NoError(t, err)
}

func requireValue(t *testing.T, b kv.Backend, k, v string) {
	t.Helper()
	got, err := kv.Get(context.Background(), b, []byte(k))
	require.NoError(t, err)
	require.NotNil(t, got, "key %q missing", k)
	require.Equal(t, v, string(got.Value))
}

// The client only knows a follower; the follower's NOT_LEADER hint leads it
// to a leader that is not even in its endpoint list.
func TestWriteThroughFollowerFollowsHint(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, 2)
	tc.elect(1)
	follower := tc.nodes[0]
	c := tc.client([]string{follower.addr})
	// Make the client believe the follower leads, as after a stale discovery.
	c.setLeader(follower.addr, 0)

	put(t, c, "k", "v")
	require.Equal(t, int64(1), follower.refused.Load(), "the put must have been refused by the follower first")
	require.Equal(t, tc.nodes[1].addr, c.cachedLeader())
	requireValue(t, tc.store, "k", "v")
	requireValue(t, c, "k", "v")
}

func TestFollowsLeaderSwitches(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, 2)
	tc.elect(0)
	c := tc.client(tc.addrs())
	put(t, c, "before", "1")
	require.Equal(t, tc.nodes[0].addr, c.cachedLeader())

	tc.elect(1)
	put(t, c, "after", "2")
	require.Equal(t, tc.nodes[1].addr, c.cachedLeader())
	require.Positive(t, tc.nodes[0].refused.Load())

	// Concurrent writers while leadership flips back and forth: every write
	// lands exactly once, because a NOT_LEADER refusal was not executed.
	const writers, perWriter = 4, 25
	var wg sync.WaitGroup
	errs := make(chan error, writers*perWriter)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				_, err := c.Put(context.Background(), kv.PutRequest{Key: fmt.Appendf(nil, "w%d/%d", w, i), Value: []byte("x")})
				errs <- err
			}
		}()
	}
	for i := range 6 {
		tc.elect(i % 2)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	resp, err := c.Range(context.Background(), kv.RangeRequest{Key: []byte("w"), RangeEnd: kv.PrefixEnd([]byte("w"))})
	require.NoError(t, err)
	require.Len(t, resp.Kvs, writers*perWriter)
}

// The leader dies and another node takes over: a write to the dead leader is
// never sent (no connection), so it goes to the new leader.
func TestWriteMovesToNewLeaderWhenLeaderDies(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, 2)
	tc.elect(0)
	c := tc.client(tc.addrs())
	put(t, c, "a", "1")

	cc, err := c.conn(tc.nodes[0].addr)
	require.NoError(t, err)
	tc.nodes[0].stop()
	tc.elect(1)
	// Let the client notice the dropped connection, so the next write is
	// refused before sending rather than lost in flight.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for cc.GetState() == connectivity.Ready {
		require.True(t, cc.WaitForStateChange(ctx, connectivity.Ready))
	}

	put(t, c, "b", "2")
	require.Equal(t, tc.nodes[1].addr, c.cachedLeader())
	requireValue(t, c, "a", "1")
	requireValue(t, c, "b", "2")
}

// holdingBackend holds every Put until released or canceled, counting them.
type holdingBackend struct {
	kv.Backend
	entered chan struct{}
	release chan struct{}
	puts    atomic.Int64
}

func (h *holdingBackend) Put(ctx context.Context, req kv.PutRequest) (kv.PutResponse, error) {
	h.puts.Add(1)
	h.entered <- struct{}{}
	select {
	case <-h.release:
		return h.Backend.Put(ctx, req)
	case <-ctx.Done():
		return kv.PutResponse{}, ctx.Err()
	}
}

// A write whose connection breaks after it was sent is not re-sent: its
// outcome is unknown, and the caller is told so.
func TestLostWriteIsNotResent(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, 2)
	tc.elect(0)
	hold := &holdingBackend{Backend: tc.limited, entered: make(chan struct{}, 4), release: make(chan struct{})}
	var b kv.Backend = hold
	tc.nodes[0].backend.Store(&b)
	c := tc.client(tc.addrs())

	errc := make(chan error, 1)
	go func() {
		_, err := c.Put(context.Background(), kv.PutRequest{Key: []byte("k"), Value: []byte("v")})
		errc <- err
	}()
	<-hold.entered
	tc.elect(1)
	tc.nodes[0].stop()
	close(hold.release)

	err := <-errc
	require.ErrorIs(t, err, kv.ErrOutcomeUnknown)
	require.Equal(t, int64(1), hold.puts.Load())
	require.Zero(t, tc.nodes[1].refused.Load())
	got, err := kv.Get(context.Background(), tc.store, []byte("k"))
	require.NoError(t, err)
	require.Nil(t, got, "the held put never reached the store")
	// The next call finds the new leader.
	put(t, c, "k2", "v2")
	require.Equal(t, tc.nodes[1].addr, c.cachedLeader())
}

func TestSerializableReadsWithoutLeader(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, 2)
	_, err := tc.store.Put(context.Background(), kv.PutRequest{Key: []byte("k"), Value: []byte("v")})
	require.NoError(t, err)
	tc.nodes[0].stop()
	tc.elect(-1)
	c := tc.client(tc.addrs(), func(cfg *Config) { cfg.RequestTimeout = 300 * time.Millisecond })

	for range 3 { // round-robin reaches the dead endpoint too; it is skipped
		requireValue(t, c.Serializable(), "k", "v")
	}
	bg, err := c.Serializable().BatchGet(context.Background(), kv.BatchGetRequest{Keys: [][]byte{[]byte("k")}})
	require.NoError(t, err)
	require.Len(t, bg.Kvs, 1)

	_, err = c.Range(context.Background(), kv.RangeRequest{Key: []byte("k")})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorIs(t, err, kv.ErrUnavailable)
}

func TestNewFailsWhenNoEndpointAnswers(t *testing.T) {
	t.Parallel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := lis.Addr().String()
	require.NoError(t, lis.Close())
	_, err = New(context.Background(), Config{Endpoints: []string{addr}, DialTimeout: time.Second}, slog.New(slog.DiscardHandler))
	require.ErrorContains(t, err, addr)

	_, err = New(context.Background(), Config{}, slog.New(slog.DiscardHandler))
	require.ErrorContains(t, err, "at least one endpoint")
}

func TestErrorsMatchGoErrors(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, 1)
	tc.elect(0)
	c := tc.client(tc.addrs())
	ctx := context.Background()

	_, err := c.Put(ctx, kv.PutRequest{Key: []byte("k"), Value: make([]byte, 2000)})
	require.ErrorIs(t, err, kv.ErrInvalidArgument)
	require.ErrorContains(t, err, "max_metadata_value_size")
	require.Equal(t, codes.InvalidArgument, status.Code(err))

	_, err = c.Txn(ctx, kv.TxnRequest{Compare: []kv.Compare{{Key: []byte("k"), Op: kv.CompareOp(42)}}})
	require.ErrorIs(t, err, kv.ErrInvalidArgument)
	require.ErrorContains(t, err, "compare[0].op")

	require.NoError(t, c.Close())
	_, err = c.Put(ctx, kv.PutRequest{Key: []byte("k")})
	require.ErrorIs(t, err, ErrClosed)
}

func TestClusterCalls(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, 3)
	tc.elect(2)
	c := tc.client(tc.addrs()[:1])
	ctx := context.Background()

	l, err := c.Leader(ctx)
	require.NoError(t, err)
	_, term := tc.leadership()
	require.Equal(t, Leader{Addr: tc.nodes[2].addr, Term: term}, l)

	members, err := c.Members(ctx)
	require.NoError(t, err)
	require.Len(t, members, 3)
	for _, m := range members {
		require.Equal(t, m.Addr == tc.nodes[2].addr, m.IsLeader, m.Addr)
		require.Equal(t, "v-test", m.Version)
		require.Equal(t, int64(1_700_000_000_000), m.StartTime.UnixMilli())
	}
}

func TestProcedureCalls(t *testing.T) {
	t.Parallel()
	tc := newProcedureCluster(t, 2)
	tc.elect(0)
	c := tc.client(tc.addrs(), func(cfg *Config) { cfg.RequestTimeout = 2 * time.Second })
	ctx := context.Background()

	_, err := c.SubmitProcedure(ctx, "nope", []byte(`{}`))
	require.ErrorIs(t, err, kv.ErrInvalidArgument)
	require.ErrorContains(t, err, "nope")
	_, err = c.SubmitProcedure(ctx, gateType, []byte(`{not json`))
	require.ErrorIs(t, err, kv.ErrInvalidArgument)

	id, err := c.SubmitProcedure(ctx, gateType, []byte(`{"label":"one"}`))
	require.NoError(t, err)
	p, err := c.GetProcedure(ctx, id)
	require.NoError(t, err)
	require.Equal(t, gateType, p.Type)
	require.False(t, p.State.Final())

	page, err := c.ListProcedures(ctx, ListProceduresOptions{States: []ProcedureState{ProcedureRunning, ProcedureRetrying}})
	require.NoError(t, err)
	require.Len(t, page.Procedures, 1)
	page, err = c.ListProcedures(ctx, ListProceduresOptions{States: []ProcedureState{ProcedureDone}})
	require.NoError(t, err)
	require.Empty(t, page.Procedures)
	_, err = c.ListProcedures(ctx, ListProceduresOptions{States: []ProcedureState{"bogus"}})
	require.ErrorContains(t, err, "bogus")

	// A wait in progress on the old leader follows the leader change, and
	// the new leader resumes the procedure.
	type result struct {
		p   Procedure
		err error
	}
	waited := make(chan result, 1)
	go func() {
		p, err := c.WaitProcedure(ctx, id)
		waited <- result{p, err}
	}()
	<-tc.nodes[0].waits
	tc.elect(1)
	close(tc.gate)
	r := <-waited
	require.NoError(t, r.err)
	require.Equal(t, ProcedureDone, r.p.State)
	require.JSONEq(t, `{"label":"one"}`, string(r.p.Output))
	require.Equal(t, tc.nodes[1].addr, c.cachedLeader())

	_, err = c.GetProcedure(ctx, "00000000-0000-4000-8000-000000000000")
	require.ErrorIs(t, err, ErrNotFound)
}

// The client is a kv.Backend: the whole conformance suite runs through it,
// over gRPC, against a leader serving memory_store.
func TestConformanceThroughClient(t *testing.T) {
	t.Parallel()
	kvtest.Run(t, func(t *testing.T) kv.Backend {
		tc := newTestCluster(t, 1)
		tc.elect(0)
		return tc.client(tc.addrs())
	})
}
