package chaos

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/client"
	"github.com/pgmetasrv/metasrv/pkg/kv"
)

// Environment knobs. Without any, the short version runs: three rounds of
// every fault kind, about a minute.
const (
	envDuration = "METASRV_CHAOS_DURATION" // e.g. 10m: the long version, faults until then
	envClients  = "METASRV_CHAOS_CLIENTS"  // concurrent clients (default 6)
	envLease    = "METASRV_CHAOS_LEASE"    // election.lease of the nodes (default 1s)
	envKeep     = "METASRV_CHAOS_KEEP"     // 1: keep the output directory even when the test passes
	envSeed     = "METASRV_CHAOS_SEED"     // random seed (default: the time), printed in every run
)

type chaosOptions struct {
	duration time.Duration // 0: short version
	rounds   int
	clients  int
	lease    time.Duration
	keys     keySpace
	seed     uint64
}

func chaosOptionsFromEnv(t *testing.T) chaosOptions {
	t.Helper()
	o := chaosOptions{
		rounds: 3, clients: 6, lease: time.Second, seed: uint64(time.Now().UnixNano()),
		keys: keySpace{perGeneration: 5, generation: 30 * time.Second},
	}
	if v := os.Getenv(envDuration); v != "" {
		d, err := time.ParseDuration(v)
		require.NoError(t, err, "%s=%q: expected a duration such as 10m", envDuration, v)
		o.duration, o.rounds = d, 0
	}
	if v := os.Getenv(envClients); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(t, err, "%s=%q: expected a number of clients", envClients, v)
		require.Positive(t, n, "%s must be at least 1", envClients)
		o.clients = n
	}
	if v := os.Getenv(envLease); v != "" {
		d, err := time.ParseDuration(v)
		require.NoError(t, err, "%s=%q: expected a duration such as 1s", envLease, v)
		o.lease = d
	}
	if v := os.Getenv(envSeed); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		require.NoError(t, err, "%s=%q: expected an unsigned integer", envSeed, v)
		o.seed = s
	}
	return o
}

// outputDir is where node logs and, on failure, the history go. It is not
// t.TempDir, which is removed even when the test fails: it stays in
// $TMPDIR when the test fails (or METASRV_CHAOS_KEEP=1) and its path is
// printed.
func outputDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "metasrv-chaos-"+time.Now().Format("20060102-150405")+"-")
	require.NoError(t, err)
	t.Cleanup(func() {
		if t.Failed() || os.Getenv(envKeep) == "1" {
			t.Logf("chaos output (node logs, history) kept in %s", dir)
			return
		}
		_ = os.RemoveAll(dir)
	})
	return dir
}

// TestChaos runs three metasrv nodes on PostgreSQL under concurrent
// clients while the nemesis kills, pauses and partitions the leader and
// restarts PostgreSQL, then checks that the history is linearizable and that
// PostgreSQL holds what the history says.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos suite: skipped with -short")
	}
	o := chaosOptionsFromEnv(t)
	dir := outputDir(t)
	t.Logf("seed %d (%s=%d repeats the random choices), %d clients, lease %s, output in %s",
		o.seed, envSeed, o.seed, o.clients, o.lease, dir)

	logFile, err := os.Create(filepath.Join(dir, "harness.log"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = logFile.Close() })
	logger := slog.New(slog.NewTextHandler(logFile, &slog.HandlerOptions{Level: slog.LevelInfo}))

	c := newChaosCluster(t, clusterOptions{nodes: 3, lease: o.lease, outDir: dir, logger: logger})
	c.waitHealthy(t, "start-up")

	h := newHistory()
	checked := false
	// A run cut short by a failure (a cluster that never recovered) still
	// has its history checked and kept. Registered before the workload's
	// own cleanup, so it runs after the workers stopped.
	t.Cleanup(func() {
		if t.Failed() && !checked {
			checkLinearizable(t, h, dir, checkTimeout(o))
		}
	})
	var workers []*worker
	for i := range o.clients {
		cl, err := client.New(t.Context(), client.Config{Endpoints: c.endpoints(), ClientID: fmt.Sprintf("chaos-%d", i)}, logger)
		require.NoError(t, err)
		t.Cleanup(func() { _ = cl.Close() })
		workers = append(workers, newWorker(i, h, cl, o.keys, o.seed))
	}
	wl := startWorkload(t, workers)
	t.Cleanup(wl.halt) // on a failure below, the workers must not outlive the test

	nem := newNemesis(c, h, o.lease, o.seed)
	began := time.Now()
	nem.run(t, o.rounds, began.Add(o.duration))
	wl.halt()
	t.Logf("faults done after %s: %s", time.Since(began).Round(time.Second), nem.summary())

	c.healAll(t)
	c.waitHealthy(t, "healing every fault")
	final := finalReads(t, c, h, h.keys())

	t.Logf("history: %s", h.summary())
	for _, g := range h.ghostValues() {
		t.Errorf("a write reported as not applied was applied: %s", g)
	}
	checked = true
	checkLinearizable(t, h, dir, checkTimeout(o))

	// Durability: PostgreSQL holds exactly what the final linearizable reads
	// returned, so every acknowledged write the history says survived is in
	// PostgreSQL, and no key holds a write that appeared afterwards or from
	// nowhere.
	stored, err := c.storedUnder(t.Context(), keyPrefix)
	require.NoError(t, err)
	for _, key := range slices.Sorted(maps.Keys(stored)) {
		if _, ok := final[key]; !ok {
			t.Errorf("PostgreSQL holds key %s = %s, which no operation that may have applied wrote", key, stored[key])
		}
	}
	for _, key := range slices.Sorted(maps.Keys(final)) {
		v, found := stored[key]
		if !found {
			v = absent
		}
		if v != final[key] {
			t.Errorf("key %s: PostgreSQL holds %s but the final linearizable read returned %s", key, show(v), show(final[key]))
		}
	}
	t.Logf("PostgreSQL holds %d keys, each as the final reads returned", len(stored))
}

// checkLinearizable checks h key by key and, for every key whose history is
// not linearizable (or not decided in time), writes porcupine's
// visualisation, with the faults marked, into dir.
func checkLinearizable(t *testing.T, h *history, dir string, timeout time.Duration) {
	t.Helper()
	start := time.Now()
	results := checkHistory(h.operations(), timeout)
	checked, dropped := 0, 0
	for _, r := range results {
		checked += r.checked
		dropped += r.dropped
		if r.result == porcupine.Ok {
			continue
		}
		path := filepath.Join(dir, "history-"+strings.NewReplacer("/", "_").Replace(r.key)+".html")
		r.info.AddAnnotations(h.annotationsCopy())
		if err := porcupine.VisualizePath(kvModel, r.info, path); err != nil {
			t.Errorf("write the visualisation of %s: %v", r.key, err)
		}
		if r.result == porcupine.Illegal {
			t.Errorf("the history of key %s is NOT linearizable; visualisation: %s", r.key, path)
		} else {
			t.Errorf("porcupine could not decide on key %s within %s; partial visualisation: %s", r.key, timeout, path)
		}
	}
	t.Logf("porcupine: %d keys checked in %s, %d operations (%d unknown writes never observed left out)",
		len(results), time.Since(start).Round(time.Millisecond), checked, dropped)
}

// checkTimeout bounds porcupine on one key; it is far above what a correct
// history needs.
func checkTimeout(o chaosOptions) time.Duration {
	if o.duration > 0 {
		return 5 * time.Minute
	}
	return time.Minute
}

// finalReads reads every key once through the healed cluster, recording the
// reads in the history, and returns what they saw. A read that fails is
// retried until one succeeds: the cluster is whole, so one must.
func finalReads(t *testing.T, c *chaosCluster, h *history, keys []string) map[string]string {
	t.Helper()
	process := h.newProcess()
	out := map[string]string{}
	for _, key := range keys {
		deadline := time.Now().Add(recoveryTimeout)
		for {
			in := kvInput{Kind: opGet, Key: key}
			ctx, cancel := context.WithTimeout(t.Context(), opTimeout)
			call := h.now()
			resp, err := c.probe.Range(ctx, kv.RangeRequest{Key: []byte(key)})
			ret := h.now()
			cancel()
			if err == nil {
				res := kvOutput{Value: firstValue(resp.Kvs)}
				h.record(process, in, res, call, ret, outcomeOK, nil)
				out[key] = res.Value
				break
			}
			h.record(process, in, kvOutput{}, call, ret, outcomeFailed, err)
			if time.Now().After(deadline) {
				t.Fatalf("final read of %s kept failing for %s: %v\n%s", key, recoveryTimeout, err, c.logTails())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return out
}
