package pgelection

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/election"
)

// logBuffer collects a node's logs for a test to look at while it runs.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// withLogs sends the node's logs to b (and, verbose, to the test output).
func withLogs(t testing.TB, b *logBuffer) nodeOption {
	return func(c *Config) {
		var w io.Writer = b
		if testing.Verbose() {
			w = io.MultiWriter(b, testWriter{t})
		}
		c.Logger = slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// withNodeInfo makes the node advertise addr with host as its hostname.
func withNodeInfo(addr, host string) nodeOption {
	return func(c *Config) {
		src := election.NewNodeInfoSource(addr, "test", "abcdef", time.Now())
		c.NodeInfo = func() election.NodeInfo {
			ni := src.Snapshot()
			ni.Hostname = host
			return ni
		}
	}
}

func TestSecondClusterOnTheSameKeysIsRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	opts, pool := newDatabase(t)
	first := startNode(t, opts, pool, "c1")
	first.awaitChange(t, election.LeaderChange{Kind: election.Elected, Term: 1})

	// Same table, same (empty) prefix, another lock id: a second cluster
	// that would elect itself and write the first one's keys.
	other := opts
	other.MetaElectionLockID = 43
	n := newNode(t, other, pool, "c2")
	err := n.Start(ctx)
	require.ErrorIs(t, err, ErrLockIDMismatch)
	require.ErrorContains(t, err, `table "metakv" (store_key_prefix "") belongs to the cluster with meta_election_lock_id 42; this node has 43`)
	require.ErrorContains(t, err, "set meta_election_lock_id = 42")
	var regs int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM metakv_election_candidates WHERE lock_id = 43`).Scan(&regs))
	require.Zero(t, regs, "a refused node does not register")

	// Same lock id on another prefix: both clusters would share one
	// election row, the leader of one answering for the other.
	shared := opts
	shared.StoreKeyPrefix = "tenant2/"
	n = newNode(t, shared, pool, "c3")
	err = n.Start(ctx)
	require.ErrorIs(t, err, ErrLockIDShared)
	require.ErrorContains(t, err, `meta_election_lock_id 42 is the election of the cluster with store_key_prefix "" in table "metakv"; this node has store_key_prefix "tenant2/"`)

	// Another prefix with its own lock id is another cluster, side by side.
	tenant := opts
	tenant.StoreKeyPrefix = "tenant2/"
	tenant.MetaElectionLockID = 43
	second := startNode(t, tenant, pool, "c4")
	second.awaitChange(t, election.LeaderChange{Kind: election.Elected, Term: 1})
	// And a node of the first cluster still joins it.
	startNode(t, opts, pool, "c5")
	require.True(t, first.IsLeader())
}

func TestForeignHolderOfTheLockIsReported(t *testing.T) {
	t.Parallel()
	opts, pool := newDatabase(t)
	// Another cluster in the same database, on another table, with the
	// same lock id: it holds the advisory lock, ours can never win.
	foreign := opts
	foreign.MetaTableName = "otherkv"
	migrate(t, foreign)
	holder := startNode(t, foreign, pool, "foreign1")
	holder.awaitChange(t, election.LeaderChange{Kind: election.Elected, Term: 1})

	var logs logBuffer
	n := startNode(t, opts, pool, "ours1", withLogs(t, &logs))
	// Seen once (a suspect), then again: reported.
	n.testSignals.HolderChecked.WaitUntil(func(o holderOutcome) bool { return o == holderReported })
	out := logs.String()
	require.Contains(t, out, "held by a session outside this cluster")
	require.Contains(t, out, "holder_application_name=metasrv-election-foreign1")
	require.Contains(t, out, "meta_election_lock_id")
	require.Equal(t, 1, strings.Count(out, "held by a session outside this cluster"), "rate-limited")
	require.False(t, n.IsLeader())
}

func TestMemberHoldingTheLockIsNotReported(t *testing.T) {
	t.Parallel()
	opts, pool := newDatabase(t)
	leader := startNode(t, opts, pool, "m1")
	leader.awaitChange(t, election.LeaderChange{Kind: election.Elected, Term: 1})
	var logs logBuffer
	follower := startNode(t, opts, pool, "m2", withLogs(t, &logs))
	// Until the follower checked the holder at least twice.
	for range 2 {
		follower.testSignals.HolderChecked.WaitUntil(func(o holderOutcome) bool { return o == holderMember })
	}
	require.NotContains(t, logs.String(), "outside this cluster")
	require.False(t, follower.IsLeader())
}

func TestDuplicateAddressIsReported(t *testing.T) {
	t.Parallel()
	opts, pool := newDatabase(t)
	var logs1, logs2, logs3 logBuffer
	d1 := startNode(t, opts, pool, "d1", withLogs(t, &logs1), withNodeInfo("dup:3002", "host-a"))
	d2 := startNode(t, opts, pool, "d2", withLogs(t, &logs2), withNodeInfo("dup:3002", "host-b"))
	d3 := startNode(t, opts, pool, "d3", withLogs(t, &logs3), withNodeInfo("d3:3002", "host-c"))
	const warning = "another live node registered the same address"
	for i, l := range []*logBuffer{&logs1, &logs2} {
		n := []*node{d1, d2}[i]
		n.testSignals.Registered.WaitUntil(func(r registration) bool { return r.duplicate })
		require.Contains(t, l.String(), warning)
		require.Contains(t, l.String(), "addr=dup:3002")
		require.Contains(t, l.String(), "grpc.server_addr")
		require.Equal(t, 1, strings.Count(l.String(), warning), "rate-limited")
	}
	require.Contains(t, logs1.String(), "other_hostname=host-b")
	require.Contains(t, logs2.String(), "other_hostname=host-a")
	for range 2 {
		require.False(t, d3.testSignals.Registered.WaitOrTimeout().duplicate, "a node's own registration is no duplicate")
	}
	require.NotContains(t, logs3.String(), warning, "a node's own registration is no duplicate")
}

// A node restarted at once finds its predecessor's registration still live:
// that is no duplicate, and nothing is reported once it renewed.
func TestRestartedNodeIsNoDuplicate(t *testing.T) {
	t.Parallel()
	opts, pool := newDatabase(t)
	// The predecessor crashed: its registration outlives it.
	_, err := pool.Exec(context.Background(), `INSERT INTO metakv_election_candidates (lock_id, addr, node_info, expires_at, instance_id)
		VALUES (42, 'r:3002', '{"addr": "r:3002"}', now() + interval '1 hour', 'crashed')`)
	require.NoError(t, err)

	var logs logBuffer
	n := startNode(t, opts, pool, "r2", withLogs(t, &logs), withNodeInfo("r:3002", "host-a"))
	for range 2 {
		require.False(t, n.testSignals.Registered.WaitOrTimeout().duplicate, "the predecessor's registration was replaced at Start")
	}
	require.NotContains(t, logs.String(), "another live node registered the same address")
}
