package metasrv

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/election"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/kv/memkv"
)

// cacheBundle is one single-node Metasrv on memkv whose durable writes go
// through a faulty backend of the test's choosing.
type cacheBundle struct {
	m       *Metasrv
	store   *memkv.Store
	leader  kv.Backend
	signals *testSignals
	settles atomic.Int64
}

func setupCache(t *testing.T, fenced func(store *memkv.Store) kv.Backend) *cacheBundle {
	t.Helper()
	b := &cacheBundle{store: memkv.New(), signals: newTestSignals(t)}
	el := election.NewSingle(func() election.NodeInfo { return election.NodeInfo{Addr: "n:1"} }, discard())
	m, err := New(Deps{
		Logger:  discard(),
		Store:   b.store,
		Fenced:  func(int64) kv.Backend { return fenced(b.store) },
		Settle:  func(context.Context) error { b.settles.Add(1); return nil },
		Elector: el,
		Addr:    func() string { return "n:1" },
	})
	require.NoError(t, err)
	m.signals = b.signals
	b.m = m
	ctx := context.Background()
	require.NoError(t, m.Start(ctx))
	t.Cleanup(func() { require.NoError(t, m.Stop(ctx)) })
	waitTransition(t, m, LeaderReady)
	b.leader, err = m.LeaderBackend(ctx)
	require.NoError(t, err)
	return b
}

// requireCacheEqualsStore waits for the term's writes to end, then compares
// every key of the cache with the durable store.
func requireCacheEqualsStore(t *testing.T, m *Metasrv, durable kv.Backend) {
	t.Helper()
	term := m.current.Load()
	require.NotNil(t, term, "not leading")
	term.writes.wg.Wait()
	all := kv.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}}
	want, err := durable.Range(context.Background(), all)
	require.NoError(t, err)
	got, err := term.cache.data.Range(context.Background(), all)
	require.NoError(t, err)
	require.Equal(t, pairs(want.Kvs), pairs(got.Kvs), "leader cache differs from the durable store")
	require.Zero(t, term.cache.unsureN.Load(), "keys left unsure")
}

func pairs(kvs []kv.KeyValue) []string {
	out := make([]string, len(kvs))
	for i, p := range kvs {
		out[i] = string(p.Key) + "=" + string(p.Value)
	}
	return out
}

// lostAck applies writes of the key "k" but reports their outcome as
// unknown, as when the connection breaks during COMMIT.
type lostAck struct{ kv.Backend }

func (b lostAck) Put(ctx context.Context, req kv.PutRequest) (kv.PutResponse, error) {
	resp, err := b.Backend.Put(ctx, req)
	if err != nil || string(req.Key) != "k" {
		return resp, err
	}
	return kv.PutResponse{}, fmt.Errorf("commit: %w", kv.ErrOutcomeUnknown)
}

func TestCacheFollowsAWriteOfUnknownOutcome(t *testing.T) {
	t.Parallel()
	b := setupCache(t, func(s *memkv.Store) kv.Backend { return lostAck{s} })
	ctx := context.Background()
	_, err := b.leader.Put(ctx, kv.PutRequest{Key: []byte("k"), Value: []byte("v")})
	require.ErrorIs(t, err, kv.ErrOutcomeUnknown)

	// The write did apply; the cache re-read it, after settling, instead of
	// keeping the old state.
	requireCacheEqualsStore(t, b.m, b.store)
	require.EqualValues(t, 1, b.settles.Load(), "the re-read waits until the write can no longer commit")
	require.Equal(t, LeaderReady, b.m.State())
	got, err := kv.Get(ctx, b.leader, []byte("k"))
	require.NoError(t, err)
	require.Equal(t, []byte("v"), got.Value)
}

// heldWrites holds every Put of the key "k" until released, then applies
// it: a write whose statement is running. Other keys (the default metadata
// made at start) pass.
type heldWrites struct {
	kv.Backend
	entered chan string
	release chan struct{}
}

func (b *heldWrites) Put(ctx context.Context, req kv.PutRequest) (kv.PutResponse, error) {
	if string(req.Key) == "k" {
		b.entered <- string(req.Key)
		<-b.release
	}
	return b.Backend.Put(ctx, req)
}

// A caller that leaves while its write runs is told the outcome is unknown;
// the write goes on, and the cache takes its real outcome.
func TestCallerLeavingInFlightDoesNotDecideTheCache(t *testing.T) {
	t.Parallel()
	held := &heldWrites{entered: make(chan string, 1), release: make(chan struct{})}
	b := setupCache(t, func(s *memkv.Store) kv.Backend { held.Backend = s; return held })
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := b.leader.Put(ctx, kv.PutRequest{Key: []byte("k"), Value: []byte("new")})
		errc <- err
	}()
	require.Equal(t, "k", <-held.entered)
	cancel()
	err := <-errc
	require.ErrorIs(t, err, kv.ErrOutcomeUnknown)
	require.ErrorIs(t, err, context.Canceled)

	close(held.release)
	requireCacheEqualsStore(t, b.m, b.store)
	got, err := kv.Get(context.Background(), b.leader, []byte("k"))
	require.NoError(t, err)
	require.Equal(t, "new", string(got.Value), "the write committed after its caller left")
}

// A caller that leaves while its write waits behind another write of the same
// key gets a definite failure, and its write is never sent.
func TestCallerLeavingBeforeSendDropsTheWrite(t *testing.T) {
	t.Parallel()
	held := &heldWrites{entered: make(chan string, 2), release: make(chan struct{})}
	b := setupCache(t, func(s *memkv.Store) kv.Backend { held.Backend = s; return held })
	first := make(chan error, 1)
	go func() {
		_, err := b.leader.Put(context.Background(), kv.PutRequest{Key: []byte("k"), Value: []byte("first")})
		first <- err
	}()
	require.Equal(t, "k", <-held.entered)
	drain(b.signals.locking)

	ctx, cancel := context.WithCancel(context.Background())
	second := make(chan error, 1)
	go func() {
		_, err := b.leader.Put(ctx, kv.PutRequest{Key: []byte("k"), Value: []byte("second")})
		second <- err
	}()
	// The second write's goroutine is about to wait for the first's lock.
	require.Equal(t, "k", <-b.signals.locking)
	cancel()
	err := <-second
	require.ErrorIs(t, err, context.Canceled)
	require.NotErrorIs(t, err, kv.ErrOutcomeUnknown, "it waited for its key's lock: nothing was sent")

	close(held.release)
	require.NoError(t, <-first)
	requireCacheEqualsStore(t, b.m, b.store)
	got, err := kv.Get(context.Background(), b.store, []byte("k"))
	require.NoError(t, err)
	require.Equal(t, "first", string(got.Value))
}

// drain empties a signal channel of what earlier writes sent.
func drain(ch chan string) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}
