package pgelection

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/internal/pgtest"
	"github.com/pgmetasrv/metasrv/internal/proccluster"
	"github.com/pgmetasrv/metasrv/pkg/config"
	"github.com/pgmetasrv/metasrv/pkg/election"
)

// The failover measurement runs electors as child processes: this test
// binary re-executed with childEnv set runs one elector (childMain) and
// prints its leadership changes with wall-clock timestamps, which the parent
// compares with the instant it injected the fault.
const (
	childEnv       = "METASRV_ELECTION_CHILD"
	childDSNEnv    = "METASRV_ELECTION_CHILD_DSN"
	childPoolEnv   = "METASRV_ELECTION_CHILD_POOL_DSN"
	roundsEnv      = "METASRV_FAILOVER_ROUNDS"
	failoverLockID = 7
)

func childOptions(dsn string) config.Options {
	o := config.Default()
	o.Backend = config.BackendPostgres
	o.StoreAddrs = []string{dsn}
	o.MetaTableName = "metakv"
	o.MetaElectionLockID = failoverLockID
	return o // production election settings: lease 3s, campaign 250ms
}

// childMain runs one elector until SIGTERM (graceful: Stop resigns).
func childMain() int {
	name := os.Getenv(childEnv)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("METASRV_ELECTION_CHILD_LOG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv(childPoolEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer pool.Close()
	src := election.NewNodeInfoSource(name+":3002", "bench", "bench", time.Now())
	cfg := electionConfig(childOptions(os.Getenv(childDSNEnv)))
	cfg.NodeInfo, cfg.NodeName, cfg.Pool, cfg.Logger = src.Snapshot, name, pool, logger
	e, err := New(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	changes, cancel := e.Subscribe()
	defer cancel()
	if err := e.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("ready")
	for {
		select {
		case c := <-changes:
			fmt.Printf("%s %d %d\n", c.Kind, c.Term, time.Now().UnixNano())
		case <-sigs:
			e.Stop()
			return 0
		}
	}
}

// child is one elector process seen from the parent, in its process slot.
type child struct {
	name  string
	proc  *proccluster.Slot
	proxy *blackhole
}

type event struct {
	child string
	kind  string
	term  int64
	at    time.Time
}

type failoverRig struct {
	t        *testing.T
	dsn      string
	viaProxy bool
	events   chan event
	children map[string]*child
	seq      int
	leader   string
	term     int64
}

func (r *failoverRig) spawn() {
	r.t.Helper()
	r.seq++
	name := fmt.Sprintf("fo%d", r.seq)
	c := &child{name: name}
	dsn := r.dsn
	if r.viaProxy {
		u, err := url.Parse(r.dsn)
		require.NoError(r.t, err)
		c.proxy = newBlackhole(r.t, u.Host)
		u.Host = c.proxy.addr()
		dsn = u.String()
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+name, childDSNEnv+"="+dsn, childPoolEnv+"="+r.dsn)
	cmd.Stderr = os.Stderr
	// A pipe of our own, not StdoutPipe: the slot waits for the process
	// while the reader below may still be reading.
	out, w, err := os.Pipe()
	require.NoError(r.t, err)
	cmd.Stdout = w
	c.proc = &proccluster.Slot{Name: "elector " + name}
	err = c.proc.Start(cmd)
	w.Close()
	require.NoError(r.t, err)
	ready := make(chan struct{})
	go func() {
		defer out.Close()
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) == 1 && f[0] == "ready" {
				close(ready)
				continue
			}
			if len(f) != 3 {
				continue
			}
			term, _ := strconv.ParseInt(f[1], 10, 64)
			ns, _ := strconv.ParseInt(f[2], 10, 64)
			r.events <- event{child: name, kind: f[0], term: term, at: time.Unix(0, ns)}
		}
	}()
	select {
	case <-ready:
	case <-time.After(wait):
		r.t.Fatalf("child %s did not start", name)
	}
	r.children[name] = c
}

// reap waits for a child that was killed or stopped and forgets it.
func (r *failoverRig) reap(name string) {
	c := r.children[name]
	<-c.proc.Exited()
	if c.proxy != nil {
		c.proxy.close()
	}
	delete(r.children, name)
}

// awaitElected consumes events until some child is elected above term.
func (r *failoverRig) awaitElected(above int64) event {
	r.t.Helper()
	deadline := time.After(wait)
	for {
		select {
		case ev := <-r.events:
			if ev.kind == election.Elected.String() && ev.term > above {
				r.leader, r.term = ev.child, ev.term
				return ev
			}
		case <-deadline:
			r.t.Fatalf("no leader elected above term %d", above)
		}
	}
}

func (r *failoverRig) stopAll() {
	for name, c := range r.children {
		_ = c.proc.Kill()
		r.reap(name)
	}
}

// TestFailoverTimes measures takeover times (fault injected -> the new
// leader's Elected); it is a measurement, not a check, and runs only when
// METASRV_FAILOVER_ROUNDS is set:
//
//	METASRV_FAILOVER_ROUNDS=20 go test -run TestFailoverTimes -v ./pkg/election/pgelection/
//
// METASRV_FAILOVER_SCENARIOS=sigkill,partition picks scenarios.
func TestFailoverTimes(t *testing.T) {
	rounds, _ := strconv.Atoi(os.Getenv(roundsEnv))
	if rounds <= 0 {
		t.Skipf("measurement: set %s=20 (or more) to run", roundsEnv)
	}
	opts := childOptions(pgtest.NewDatabase(t))
	migrate(t, opts)
	pool := newPool(t, opts.StoreAddrs[0])

	scenarios := []struct {
		name     string
		viaProxy bool
		fault    func(r *failoverRig)
	}{
		{"sigkill", false, func(r *failoverRig) { require.NoError(t, r.children[r.leader].proc.Signal(syscall.SIGKILL)) }},
		{"pg_terminate_backend", false, func(r *failoverRig) { terminate(t, pool, r.leader) }},
		{"partition", true, func(r *failoverRig) { r.children[r.leader].proxy.partition() }},
		{"resign_sigterm", false, func(r *failoverRig) { require.NoError(t, r.children[r.leader].proc.Signal(syscall.SIGTERM)) }},
	}
	only := os.Getenv("METASRV_FAILOVER_SCENARIOS") // comma-separated names; empty: all
	for _, sc := range scenarios {
		if only != "" && !slices.Contains(strings.Split(only, ","), sc.name) {
			continue
		}
		r := &failoverRig{t: t, dsn: opts.StoreAddrs[0], viaProxy: sc.viaProxy, events: make(chan event, 1024), children: map[string]*child{}}
		for range 3 {
			r.spawn()
		}
		r.awaitElected(0)
		var took []time.Duration
		for range rounds {
			old := r.leader
			// Let the followers settle into their campaign loop, and fault at
			// a random phase of it: a fixed pause would line the fault up with
			// the newest child's attempts and flatter the figures.
			time.Sleep(500*time.Millisecond + rand.N(opts.Election.CampaignInterval))
			start := time.Now()
			sc.fault(r)
			ev := r.awaitElected(r.term)
			took = append(took, ev.at.Sub(start))
			if sc.name != "pg_terminate_backend" {
				if sc.name == "partition" {
					_ = r.children[old].proc.Kill()
				}
				r.reap(old)
				r.spawn()
			}
		}
		r.stopAll()
		slices.Sort(took)
		p := func(q float64) time.Duration { return took[min(len(took)-1, int(q*float64(len(took))))] }
		if testing.Verbose() {
			t.Logf("failover %s all: %v", sc.name, took)
		}
		t.Logf("failover %-22s rounds=%d median=%v p99=%v max=%v", sc.name, len(took), p(0.5).Round(time.Millisecond), p(0.99).Round(time.Millisecond), took[len(took)-1].Round(time.Millisecond))
	}
}
