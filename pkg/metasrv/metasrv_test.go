package metasrv

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/internal/testsignal"
	"github.com/pgmetasrv/metasrv/pkg/election"
	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/kv/memkv"
)

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// recorder is a listener that records its starts and stops in a shared log,
// and can be made to fail its first starts.
type recorder struct {
	name     string
	log      *eventLog
	failures int

	mu      sync.Mutex
	attempt int
}

type eventLog struct {
	mu     sync.Mutex
	events []string
	// cond holds a token when events were added since a waiter last looked.
	cond chan struct{}
}

func newEventLog() *eventLog { return &eventLog{cond: make(chan struct{}, 1)} }

func (l *eventLog) add(e string) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
	select {
	case l.cond <- struct{}{}:
	default: // a token is already waiting
	}
}

func (l *eventLog) snapshot() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.events...)
}

// waitLen waits until the log holds at least n events and returns them.
func (l *eventLog) waitLen(t *testing.T, n int) []string {
	t.Helper()
	timer := time.NewTimer(testsignal.Timeout)
	defer timer.Stop()
	for {
		if events := l.snapshot(); len(events) >= n {
			return events
		}
		select {
		case <-l.cond:
		case <-timer.C:
			t.Fatalf("event log never reached %d events: %v", n, l.snapshot())
		}
	}
}

func (r *recorder) Name() string { return r.name }

func (r *recorder) Start(ctx context.Context, t Term) error {
	r.mu.Lock()
	r.attempt++
	fail := r.attempt <= r.failures
	r.mu.Unlock()
	if fail {
		return errors.New("injected start failure")
	}
	r.log.add("start " + r.name)
	return nil
}

func (r *recorder) Stop() { r.log.add("stop " + r.name) }

type bundle struct {
	m       *Metasrv
	store   *memkv.Store
	elector *election.Single
}

func setup(t *testing.T, listeners ...Listener) *bundle {
	t.Helper()
	store := memkv.New()
	el := election.NewSingle(func() election.NodeInfo { return election.NodeInfo{Addr: "127.0.0.1:3002"} }, discard())
	m, err := New(Deps{
		Logger:    discard(),
		Store:     store,
		KeyPrefix: []byte("cluster-a/"),
		Limits:    kv.Limits{MaxTxnOps: 8, MaxValueSize: 1024},
		Elector:   el,
		Listeners: listeners,
		Addr:      func() string { return "127.0.0.1:3002" },
	})
	require.NoError(t, err)
	m.signals = newTestSignals(t)
	return &bundle{m: m, store: store, elector: el}
}

// waitTransition consumes m's state changes, in order, until one to want.
// It waits for the next change to want, not for m to be in want: a state
// reached earlier and already consumed does not count. m.signals must have
// been set (with newTestSignals) before m started.
func waitTransition(t *testing.T, m *Metasrv, want State) {
	t.Helper()
	require.NotNil(t, m.signals, "waitTransition needs m.signals set before Start")
	m.signals.stateChanged.WaitUntil(func(s State) bool { return s == want })
}

func TestStartStopTwice(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	require.NoError(t, b.m.Start(ctx))
	require.NoError(t, b.m.Start(ctx))
	waitTransition(t, b.m, LeaderReady)
	require.NoError(t, b.m.Stop(ctx))
	require.NoError(t, b.m.Stop(ctx))
	require.Equal(t, Follower, b.m.State())
	_, err := b.m.LeaderBackend(ctx)
	require.ErrorIs(t, err, election.ErrNotLeader)
}

func TestMemoryStoreLeadsAndServes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	require.NoError(t, b.m.Start(ctx))
	t.Cleanup(func() { require.NoError(t, b.m.Stop(ctx)) })
	waitTransition(t, b.m, LeaderReady)

	store, err := b.m.LeaderBackend(ctx)
	require.NoError(t, err)

	// Default metadata exists, with GreptimeDB's values, under the key
	// prefix in the durable store.
	got, err := kv.Get(ctx, store, []byte("__catalog_name/greptime"))
	require.NoError(t, err)
	require.Equal(t, "null", string(got.Value))
	for _, schema := range []string{"public", "information_schema", "greptime_private"} {
		raw, err := kv.Get(ctx, b.store, []byte("cluster-a/__schema_name/greptime/"+schema))
		require.NoError(t, err)
		require.NotNil(t, raw, schema)
		require.Equal(t, `{"ttl":null,"extra_options":{}}`, string(raw.Value), schema)
	}

	// A read after a write sees it, from the cache and from the durable store.
	_, err = store.Put(ctx, kv.PutRequest{Key: []byte("k"), Value: []byte("v")})
	require.NoError(t, err)
	got, err = kv.Get(ctx, store, []byte("k"))
	require.NoError(t, err)
	require.Equal(t, []byte("v"), got.Value)
	got, err = kv.Get(ctx, b.m.SerializableBackend(), []byte("k"))
	require.NoError(t, err)
	require.Equal(t, []byte("v"), got.Value)

	// Limits hold on the leader's store.
	_, err = store.Put(ctx, kv.PutRequest{Key: []byte("big"), Value: make([]byte, 2000)})
	require.ErrorIs(t, err, kv.ErrValueTooLarge)

	keys, size := b.m.CacheStats()
	require.Equal(t, 5, keys) // the catalog, three schemas, k
	require.Positive(t, size)
}

func TestListenersStartInOrderStopInReverseAndFailuresRetry(t *testing.T) {
	t.Parallel()
	log := newEventLog()
	a := &recorder{name: "a", log: log}
	flaky := &recorder{name: "flaky", log: log, failures: 2}
	c := &recorder{name: "c", log: log}
	b := setup(t, a, flaky, c)
	ctx := context.Background()
	require.NoError(t, b.m.Start(ctx))
	// The failing listener did not hold up the one after it.
	require.Equal(t, []string{"start a", "start c", "start flaky"}, log.waitLen(t, 3))

	require.NoError(t, b.m.Stop(ctx))
	require.Equal(t, []string{"start a", "start c", "start flaky", "stop c", "stop flaky", "stop a"}, log.snapshot())
}

func TestResignEndsTheTermAndItsStore(t *testing.T) {
	t.Parallel()
	log := newEventLog()
	l := &recorder{name: "l", log: log}
	b := setup(t, l)
	ctx := context.Background()
	require.NoError(t, b.m.Start(ctx))
	t.Cleanup(func() { require.NoError(t, b.m.Stop(ctx)) })
	waitTransition(t, b.m, LeaderReady)
	store, err := b.m.LeaderBackend(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"start l"}, log.waitLen(t, 1))

	_, err = store.Put(ctx, kv.PutRequest{Key: []byte("k"), Value: []byte("v1")})
	require.NoError(t, err)

	// A lone node that resigns wins the next term at once: the listener is
	// stopped for term 1 and started again for term 2.
	require.NoError(t, b.elector.Resign(ctx))
	require.Equal(t, []string{"start l", "stop l", "start l"}, log.waitLen(t, 3))
	waitTransition(t, b.m, LeaderReady)

	// The old term's store refuses both reads and writes.
	_, err = store.Put(ctx, kv.PutRequest{Key: []byte("k"), Value: []byte("v2")})
	require.ErrorIs(t, err, election.ErrNotLeader)
	_, err = kv.Get(ctx, store, []byte("k"))
	require.ErrorIs(t, err, election.ErrNotLeader)

	// The new term's cache was loaded afresh from the durable store.
	store2, err := b.m.LeaderBackend(ctx)
	require.NoError(t, err)
	got, err := kv.Get(ctx, store2, []byte("k"))
	require.NoError(t, err)
	require.Equal(t, []byte("v1"), got.Value)
}

func TestStreamClosedUnexpectedlyStepsDown(t *testing.T) {
	t.Parallel()
	log := newEventLog()
	l := &recorder{name: "l", log: log}
	b := setup(t, l)
	ctx := context.Background()
	require.NoError(t, b.m.Start(ctx))
	waitTransition(t, b.m, LeaderReady)
	require.Equal(t, []string{"start l"}, log.waitLen(t, 1))
	// Stopping the elector behind the core's back closes its stream.
	b.elector.Stop()
	waitTransition(t, b.m, Follower)
	require.Equal(t, []string{"start l", "stop l"}, log.waitLen(t, 2))
	require.NoError(t, b.m.Stop(ctx))
}

func TestNodeExpiryListenerRemovesIdleNodes(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_000_000, 0)
	l := NewNodeExpiryListener(discard(), time.Hour, time.Hour, func() time.Time { return now })
	ctx := context.Background()
	mem := memkv.New()
	put := func(key []byte, value string) {
		_, err := mem.Put(ctx, kv.PutRequest{Key: key, Value: []byte(value)})
		require.NoError(t, err)
	}
	old, recent := itoa(now.Add(-2*time.Hour).UnixMilli()), itoa(now.Add(-time.Minute).UnixMilli())
	put(greptimekey.NodeInfoKey(greptimekey.RoleDatanode, 1), `{"last_activity_ts":`+old+`}`)
	put(greptimekey.NodeInfoKey(greptimekey.RoleDatanode, 2), `{"last_activity_ts":`+recent+`}`)
	put(greptimekey.DatanodeLeaseKey(1), `{"timestamp_millis":`+old+`,"node_addr":"a","workloads":{"Datanode":{"types":[0]}}}`)
	put(greptimekey.FlownodeLeaseKey(3), `{"timestamp_millis":`+recent+`,"node_addr":"b","workloads":{"Flownode":{"types":[]}}}`)
	put(greptimekey.NodeInfoKey(greptimekey.RoleFrontend, 9), "not json") // left for its next heartbeat
	put([]byte("other/key"), "x")

	n, err := l.Sweep(ctx, mem)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	resp, err := mem.Range(ctx, kv.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}, KeysOnly: true})
	require.NoError(t, err)
	var keys []string
	for _, p := range resp.Kvs {
		keys = append(keys, string(p.Key))
	}
	require.ElementsMatch(t, []string{
		string(greptimekey.NodeInfoKey(greptimekey.RoleDatanode, 2)),
		string(greptimekey.NodeInfoKey(greptimekey.RoleFrontend, 9)),
		string(greptimekey.FlownodeLeaseKey(3)),
		"other/key",
	}, keys)

	// As a listener it starts and stops cleanly.
	require.NoError(t, l.Start(ctx, Term{ID: 1, Memory: mem}))
	l.Stop()
	l.Stop()
}

func itoa(v int64) string { return strconvFormat(v) }
