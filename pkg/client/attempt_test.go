package client

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	metasrvv1 "github.com/pgmetasrv/metasrv/pkg/api/metasrv/v1"
	"github.com/pgmetasrv/metasrv/pkg/kv"
)

// The tests below freeze a node (it takes calls and never answers) and give
// callers deadlines far longer than an attempt: a call that succeeds, or
// fails with its own error rather than the caller's deadline, proves the
// client left the frozen node after one attempt. None relies on how fast the
// machine is.

// A linearizable read sent to a frozen leader moves on to its successor.
func TestReadLeavesFrozenLeader(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, 2)
	tc.elect(0)
	c := tc.client(tc.addrs())
	put(t, c, "k", "v")

	tc.nodes[0].frozen.Store(true)
	tc.elect(1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got, err := c.Get(ctx, []byte("k"))
	require.NoError(t, err)
	require.NotNil(t, got)
	require.Equal(t, "v", string(got.Value))
	require.Equal(t, 1, tc.nodes[0].heldCalls(metasrvv1.Store_Range_FullMethodName), "the read must have tried the frozen leader first")
	require.Equal(t, tc.nodes[1].addr, c.cachedLeader())
}

// The other nodes keep naming the frozen leader until a successor is
// elected: the read goes back to it, one attempt at a time, and gets through
// as soon as the election moves on.
func TestReadWaitsOutFrozenLeaderUntilSuccessor(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, 2)
	tc.elect(0)
	c := tc.client(tc.addrs())
	put(t, c, "k", "v")

	frozen := tc.nodes[0]
	frozen.frozen.Store(true)
	type result struct {
		kv  *kv.KeyValue
		err error
	}
	done := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		got, err := c.Get(ctx, []byte("k"))
		done <- result{got, err}
	}()
	for ranges := 0; ranges < 2; {
		select {
		case m := <-frozen.held:
			if m == metasrvv1.Store_Range_FullMethodName {
				ranges++
			}
		case r := <-done:
			t.Fatalf("the read ended while its only leader was frozen: %v, %v", r.kv, r.err)
		}
	}
	tc.elect(1)
	r := <-done
	require.NoError(t, r.err)
	require.NotNil(t, r.kv)
	require.Equal(t, "v", string(r.kv.Value))
	require.Equal(t, tc.nodes[1].addr, c.cachedLeader())
}

// A write sent to a frozen leader fails after one attempt as outcome unknown,
// is not re-sent anywhere, and the next write finds the successor.
func TestWriteToFrozenLeaderIsNotResent(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, 2)
	tc.elect(0)
	c := tc.client(tc.addrs())
	put(t, c, "before", "1")

	frozen := tc.nodes[0]
	frozen.frozen.Store(true)
	tc.elect(1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := c.Put(ctx, kv.PutRequest{Key: []byte("k"), Value: []byte("v")})
	require.ErrorIs(t, err, kv.ErrOutcomeUnknown)
	require.NoError(t, ctx.Err(), "the write must give up after its attempt, not at the caller's deadline")
	require.Equal(t, 1, frozen.heldCalls(metasrvv1.Store_Put_FullMethodName))
	got, err := kv.Get(context.Background(), tc.store, []byte("k"))
	require.NoError(t, err)
	require.Nil(t, got, "the write was re-sent to another node")
	require.Empty(t, c.cachedLeader(), "the frozen leader must be forgotten")

	_, err = c.Put(ctx, kv.PutRequest{Key: []byte("k2"), Value: []byte("v2")})
	require.NoError(t, err)
	require.Equal(t, 1, frozen.heldCalls(metasrvv1.Store_Put_FullMethodName))
	require.Equal(t, tc.nodes[1].addr, c.cachedLeader())
	requireValue(t, tc.store, "k2", "v2")
}

// A caller whose deadline is shorter than an attempt gives up on its own
// deadline (an attempt never outlives it), and the frozen leader is still
// forgotten, so the caller's next call does not wait on it again.
func TestShortCallerDeadlineForgetsFrozenLeader(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, 2)
	tc.elect(0)
	c := tc.client(tc.addrs(), func(cfg *Config) {
		cfg.RequestTimeout, cfg.AttemptTimeout = time.Minute, 30*time.Second
	})
	put(t, c, "k", "v")

	tc.nodes[0].frozen.Store(true)
	tc.elect(1)
	short, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := c.Get(short, []byte("k"))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Empty(t, c.cachedLeader())

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := c.Get(ctx, []byte("k"))
	require.NoError(t, err)
	require.NotNil(t, got)
	require.Equal(t, 1, tc.nodes[0].heldCalls(metasrvv1.Store_Range_FullMethodName))
}

// A serializable read, which any node serves, skips a frozen node too.
func TestSerializableReadSkipsFrozenNode(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, 2)
	tc.elect(1)
	_, err := tc.store.Put(context.Background(), kv.PutRequest{Key: []byte("k"), Value: []byte("v")})
	require.NoError(t, err)
	c := tc.client(tc.addrs())

	tc.nodes[0].frozen.Store(true)
	for range 2 { // round-robin reaches the frozen node at least once
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		got, err := kv.Get(ctx, c.Serializable(), []byte("k"))
		cancel()
		require.NoError(t, err)
		require.NotNil(t, got)
	}
	require.Positive(t, tc.nodes[0].heldCalls(metasrvv1.Store_Range_FullMethodName))
}

func TestAttemptTimeoutConfig(t *testing.T) {
	t.Parallel()
	require.Equal(t, time.Second, Config{}.withDefaults().AttemptTimeout)
	require.Equal(t, 150*time.Millisecond, Config{RequestTimeout: 300 * time.Millisecond}.withDefaults().AttemptTimeout)
	require.Equal(t, 2*time.Second, Config{AttemptTimeout: 2 * time.Second}.withDefaults().AttemptTimeout)

	_, err := New(context.Background(), Config{Endpoints: []string{"127.0.0.1:1"}, RequestTimeout: time.Second, AttemptTimeout: time.Second},
		slog.New(slog.DiscardHandler))
	require.ErrorContains(t, err, "attempt timeout 1s must be shorter than request timeout 1s")
}
