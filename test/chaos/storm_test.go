package chaos

import (
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/client"
)

// envStormRuns repeats the storm (default 1; the long version runs 20).
const envStormRuns = "METASRV_STORM_RUNS"

// TestStorm is the impatient-client storm: many goroutines put, cas and txn
// a few keys on one leader with call deadlines of a few milliseconds, so
// most calls are abandoned while queued, in flight or committing. No fault is
// injected: the leader stays up. Afterwards every key is read through the
// leader (its cache), a lease apart, until the answers stop changing; the
// settled answers are compared with PostgreSQL's rows, and the whole history
// is checked with porcupine. A leader whose cache kept a value PostgreSQL does not hold fails
// both checks.
//
// Short version (CI): 64 goroutines for 4s. With METASRV_CHAOS_DURATION set
// (the long suite): 200 goroutines for 10s, METASRV_STORM_RUNS times.
func TestStorm(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos suite: skipped with -short")
	}
	o := chaosOptionsFromEnv(t)
	goroutines, duration, runs := 64, 4*time.Second, 1
	if o.duration > 0 {
		goroutines, duration = 200, 10*time.Second
	}
	if v := os.Getenv(envStormRuns); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(t, err, "%s=%q: expected a number of runs", envStormRuns, v)
		require.Positive(t, n, "%s must be at least 1", envStormRuns)
		runs = n
	}
	dir := outputDir(t)
	t.Logf("seed %d, %d goroutines for %s, %d run(s), output in %s", o.seed, goroutines, duration, runs, dir)
	logFile, err := os.Create(filepath.Join(dir, "harness.log"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = logFile.Close() })
	logger := slog.New(slog.NewTextHandler(logFile, &slog.HandlerOptions{Level: slog.LevelInfo}))

	c := newChaosCluster(t, clusterOptions{nodes: 1, lease: o.lease, outDir: dir, logger: logger})
	c.waitHealthy(t, "start-up")
	// Goroutines share a few clients, as the handlers of a busy frontend would.
	var clients []*client.Client
	for i := range 8 {
		cl, err := client.New(t.Context(), client.Config{Endpoints: c.endpoints(), ClientID: fmt.Sprintf("storm-%d", i)}, logger)
		require.NoError(t, err)
		t.Cleanup(func() { _ = cl.Close() })
		clients = append(clients, cl)
	}
	for run := range runs {
		stormRun(t, c, clients, dir, o, run, goroutines, duration)
		if t.Failed() {
			return
		}
	}
}

// stormRun is one storm on its own keys, with its own history and checks.
func stormRun(t *testing.T, c *chaosCluster, clients []*client.Client, dir string, o chaosOptions, run, goroutines int, duration time.Duration) {
	t.Helper()
	h := newHistory()
	// 20 keys per generation; a generation every 2s keeps each key's history
	// small enough for porcupine however many calls the storm makes.
	keys := keySpace{perGeneration: 20, generation: 2 * time.Second, tag: fmt.Sprintf("storm%d-", run)}
	var workers []*worker
	for i := range goroutines {
		w := newWorker(run*goroutines+i, h, clients[i%len(clients)], keys, o.seed+uint64(run))
		// 2 to 60ms: most calls end while their write is still queued,
		// running or committing.
		w.deadline = func(rng *rand.Rand) time.Duration { return time.Duration(2+rng.IntN(59)) * time.Millisecond }
		workers = append(workers, w)
	}
	wl := startWorkload(t, workers)
	t.Cleanup(wl.halt)
	time.Sleep(duration) // the storm's length: the workload is the test
	wl.halt()

	// Writes whose callers gave up go on at the server, so the first reads
	// may come before the last of them commit: every read is checked by
	// porcupine, but only settled reads are compared with PostgreSQL. Reads
	// are repeated a lease apart until a round equals the one before (no
	// write landed in between); that round must equal PostgreSQL on every
	// key. A cache entry left stale by an abandoned write is stable and
	// differs, so it fails.
	prev := finalReads(t, c, h, h.keys())
	var settled map[string]string
	rounds := 1
	for ; rounds < 10 && settled == nil; rounds++ {
		time.Sleep(o.lease)
		cur := finalReads(t, c, h, h.keys())
		if maps.Equal(cur, prev) {
			settled = cur
		}
		prev = cur
	}
	if settled == nil {
		t.Errorf("run %d: the leader's answers kept changing for %d read rounds after the storm", run, rounds)
		settled = prev
	}
	stored, err := c.storedUnder(t.Context(), keyPrefix)
	require.NoError(t, err)
	mismatches := 0
	for _, key := range h.keys() {
		v, found := stored[key]
		if !found {
			v = absent
		}
		if settled[key] != v {
			mismatches++
			t.Errorf("run %d: key %s: the leader answers %s but PostgreSQL holds %s", run, key, show(settled[key]), show(v))
		}
	}
	for _, g := range h.ghostValues() {
		t.Errorf("run %d: a write reported as not applied was applied: %s", run, g)
	}
	t.Logf("run %d: %s; %d keys, answers settled after %d read rounds, %d differ from PostgreSQL",
		run, h.summary(), len(h.keys()), rounds, mismatches)
	checkLinearizable(t, h, dir, checkTimeout(o))
}
