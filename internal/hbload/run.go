package hbload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pgmetasrv/metasrv/internal/greptimefake"
	"github.com/pgmetasrv/metasrv/internal/loadgen"
	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
)

// frontendFactor is how many base intervals apart frontends are told to
// heartbeat (GreptimeDB's frontend_heartbeat_interval).
const frontendFactor = 6

// Config describes a run.
type Config struct {
	// Endpoints are the cluster's metasrv gRPC addresses.
	Endpoints []string
	Role      metapb.Role
	Nodes     int
	// Interval is the server's heartbeat_interval. The server tells each
	// node its interval in the handshake (heartbeat_config), so this sets
	// only the expected rate, and the handshakes are checked against it.
	Interval time.Duration
	// Duration is the measurement window.
	Duration time.Duration
	// ConnsPer is how many nodes share one connection pool.
	ConnsPer int
	// Ramp spreads the nodes' starts evenly over it; 0 starts them all at
	// once.
	Ramp time.Duration
	// WarmupTimeout bounds the wait for every node's first handshake.
	WarmupTimeout time.Duration
	// Compressor is the grpc-encoding of the nodes' requests ("zstd" as
	// GreptimeDB's; registered by package grpczstd).
	Compressor string
	// Metrics, if set, reads the leader's CPU and RSS.
	Metrics *loadgen.Scraper
	// Progress gets a line every second; nil discards.
	Progress io.Writer
}

func (c *Config) check() error {
	var problems []string
	if len(c.Endpoints) == 0 {
		problems = append(problems, "no endpoints")
	}
	if _, ok := metapb.Role_name[int32(c.Role)]; !ok {
		problems = append(problems, fmt.Sprintf("unknown role %d", c.Role))
	}
	if c.Nodes < 1 || c.ConnsPer < 1 {
		problems = append(problems, fmt.Sprintf("Nodes %d and ConnsPer %d must be at least 1", c.Nodes, c.ConnsPer))
	}
	if c.Interval <= 0 || c.Duration <= 0 || c.WarmupTimeout <= 0 || c.Ramp < 0 {
		problems = append(problems, "Interval, Duration and WarmupTimeout must be positive, Ramp not negative")
	}
	if len(problems) > 0 {
		return errors.New("hbload: " + strings.Join(problems, "; "))
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	return nil
}

// RoleInterval is the interval a node of the role is told, for a server
// whose heartbeat_interval is base: base, six times it for frontends.
func RoleInterval(role metapb.Role, base time.Duration) time.Duration {
	if role == metapb.Role_FRONTEND {
		return base * frontendFactor
	}
	return base
}

// Run starts the nodes, waits until every one has handshaken, measures for
// cfg.Duration and stops them. A warm-up that times out, or ctx ending, is
// an error; the report then holds what was measured up to there.
func Run(ctx context.Context, cfg Config) (Report, error) {
	if err := cfg.check(); err != nil {
		return Report{}, err
	}
	pools := (cfg.Nodes + cfg.ConnsPer - 1) / cfg.ConnsPer
	rep := Report{
		Role: roleName(cfg.Role), Nodes: cfg.Nodes, ConnsPer: cfg.ConnsPer, Pools: pools,
		Interval: cfg.Interval.String(), RoleInterval: RoleInterval(cfg.Role, cfg.Interval).String(),
		Duration: cfg.Duration.String(), Ramp: cfg.Ramp.String(),
	}
	f, err := newFleet(cfg)
	if err != nil {
		return rep, err
	}
	defer f.stop()
	srv := &serverWatch{s: cfg.Metrics}
	srv.atStart(ctx)

	rep.Warmup, err = f.warmUp(ctx)
	rep.Handshakes = f.hs.summary()
	if err != nil {
		return rep, err
	}
	srv.atWindow(ctx)
	rep.Window, rep.LoadCPU, err = f.measure(ctx)
	rep.Handshakes = f.hs.summary()
	rep.WholeRun = latencyOf(f.wholeRun())
	if err != nil {
		return rep, err
	}
	rep.ServerCPU, rep.ServerMemory = srv.finish(ctx, rep.Window, cfg.Nodes)
	rep.Warnings = checkHandshakes(cfg, rep.Handshakes)
	return rep, nil
}

// warmUp starts the nodes and waits until each has completed a handshake.
func (f *fleet) warmUp(ctx context.Context) (Warmup, error) {
	begin := time.Now()
	deadline := time.NewTimer(f.cfg.WarmupTimeout)
	defer deadline.Stop()
	started := make(chan error, 1)
	abort := make(chan struct{}) // closed: the ramp ends early
	stopRamp := sync.OnceFunc(func() { close(abort) })
	defer stopRamp()
	go func() { started <- f.start(ctx, f.cfg.Ramp, abort) }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	result := func() Warmup {
		done, last := f.hs.progress()
		w := Warmup{Handshaken: done, Counters: f.counters()}
		if !last.IsZero() {
			w.Seconds = last.Sub(begin).Seconds()
		}
		w.FirstWarning, w.Warnings = f.warns.take()
		return w
	}
	for {
		select {
		case err := <-started:
			if err != nil {
				return result(), err
			}
			started = nil
		case <-f.hs.all:
			if started != nil { // every node has handshaken only once all started
				if err := <-started; err != nil {
					return result(), err
				}
			}
			return result(), nil
		case now := <-tick.C:
			done, _ := f.hs.progress()
			fmt.Fprintf(f.cfg.Progress, "warm-up: %3.0fs %d of %d nodes handshaken, node warnings %d\n",
				now.Sub(begin).Seconds(), done, len(f.nodes), f.warns.count.Load())
		case <-deadline.C:
			w := result()
			if started != nil {
				stopRamp()
				<-started
			}
			return w, fmt.Errorf("warm-up: only %d of %d nodes completed a handshake within %s%s",
				w.Handshaken, len(f.nodes), f.cfg.WarmupTimeout, firstWarning(w.FirstWarning))
		case <-ctx.Done():
			if started != nil {
				<-started
			}
			return result(), fmt.Errorf("warm-up interrupted after %s: %w", time.Since(begin).Round(time.Millisecond), context.Cause(ctx))
		}
	}
}

func firstWarning(w string) string {
	if w == "" {
		return ""
	}
	return "; the first node warning: " + w
}

// measure runs the window: the nodes beat on, a progress line every
// second, and the counters and timed beats of the window are taken.
func (f *fleet) measure(ctx context.Context) (Window, *LoadCPU, error) {
	before := f.counters()
	cpu0, haveCPU := loadgen.SelfCPU()
	begin := time.Now()
	f.openWindow(begin)
	end := time.NewTimer(f.cfg.Duration)
	defer end.Stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	first, lastAt := f.answered(), begin
	last := first
	var interrupted error
loop:
	for {
		select {
		case <-end.C:
			break loop
		case <-ctx.Done():
			interrupted = fmt.Errorf("measurement interrupted after %s: %w", time.Since(begin).Round(time.Millisecond), context.Cause(ctx))
			break loop
		case now := <-tick.C:
			n := f.answered()
			fmt.Fprintf(f.cfg.Progress, "heartbeat: %3.0fs %9d answered %10.1f/s (last second %10.1f) node warnings %d\n",
				now.Sub(begin).Seconds(), n-first, float64(n-first)/now.Sub(begin).Seconds(),
				float64(n-last)/now.Sub(lastAt).Seconds(), f.warns.count.Load())
			last, lastAt = n, now
		}
	}
	lat := f.closeWindow()
	elapsed := time.Since(begin)
	var load *LoadCPU
	if cpu1, ok := loadgen.SelfCPU(); ok && haveCPU {
		load = &LoadCPU{Seconds: (cpu1 - cpu0).Seconds(), Cores: (cpu1 - cpu0).Seconds() / elapsed.Seconds()}
	}
	after := f.counters()
	w := Window{Seconds: elapsed.Seconds(), Latency: latencyOf(lat), Counters: after.minus(before)}
	w.FirstWarning, w.Warnings = f.warns.take()
	w.HeartbeatsPerSec = float64(w.Responses) / elapsed.Seconds()
	w.ExpectedPerSec = float64(len(f.nodes)) / RoleInterval(f.cfg.Role, f.cfg.Interval).Seconds()
	return w, load, interrupted
}

func (c Counters) minus(o Counters) Counters {
	return Counters{
		Responses: c.Responses - o.Responses, Handshakes: c.Handshakes - o.Handshakes, Reconnects: c.Reconnects - o.Reconnects,
		NotLeader: c.NotLeader - o.NotLeader, Errors: c.Errors - o.Errors,
	}
}

// checkHandshakes flags handshakes that did not return the interval the run
// was told: the nodes then beat at another rate than the expected one.
func checkHandshakes(cfg Config, hs Handshakes) []string {
	var out []string
	want := RoleInterval(cfg.Role, cfg.Interval).String()
	for _, got := range slices.Sorted(maps.Keys(hs.Intervals)) {
		if got != want {
			out = append(out, fmt.Sprintf("%d handshakes returned heartbeat interval %s, not the %s expected of a %s with --interval %s: --interval must match the server's heartbeat_interval; the expected rate assumes %s",
				hs.Intervals[got], got, want, roleName(cfg.Role), cfg.Interval, want))
		}
	}
	if hs.WithoutConfig > 0 {
		out = append(out, fmt.Sprintf("%d handshakes returned no heartbeat_config; those nodes beat every %s (GreptimeDB's fallback)",
			hs.WithoutConfig, greptimefake.BaseHeartbeatInterval))
	}
	return out
}

// serverWatch takes the leader's figures: RSS before the nodes start, CPU
// at the window's start and end, RSS at its end. A failed scrape never
// fails the run; the figures then say why they are missing.
type serverWatch struct {
	s                *loadgen.Scraper
	start, window    sample
	startErr, winErr error
}

func (w *serverWatch) atStart(ctx context.Context) {
	if w.s != nil {
		w.start, w.startErr = scrape(ctx, w.s)
	}
}

func (w *serverWatch) atWindow(ctx context.Context) {
	if w.s != nil {
		w.window, w.winErr = scrape(ctx, w.s)
	}
}

func (w *serverWatch) finish(ctx context.Context, win Window, nodes int) (*loadgen.ServerCPU, *ServerMemory) {
	if w.s == nil {
		return nil, nil
	}
	end, endErr := scrape(ctx, w.s)
	cpu := &loadgen.ServerCPU{Source: w.s.URL}
	switch {
	case w.winErr != nil:
		cpu.Error = "at the window's start: " + w.winErr.Error()
	case endErr != nil:
		cpu.Error = "at the window's end: " + endErr.Error()
	case end.cpu < w.window.cpu:
		cpu.Error = fmt.Sprintf("%s went down from %g to %g: the node restarted during the run", loadgen.MetricProcessCPU, w.window.cpu, end.cpu)
	default:
		cpu.Measured = true
		cpu.Seconds = end.cpu - w.window.cpu
		if win.Responses > 0 {
			cpu.SecondsPer1kOps = cpu.Seconds / float64(win.Responses) * 1000
		}
		cpu.Cores = cpu.Seconds / win.Seconds
		if end.hasLeader && end.isLeader != 1 {
			cpu.Warning = fmt.Sprintf("the scraped node reports %s %g: it is not the leader, whose CPU this is meant to be", metricIsLeader, end.isLeader)
		}
	}
	mem := &ServerMemory{Source: w.s.URL}
	switch {
	case w.startErr != nil:
		mem.Error = "before the nodes started: " + w.startErr.Error()
	case endErr != nil:
		mem.Error = "at the window's end: " + endErr.Error()
	case !w.start.hasRSS || !end.hasRSS:
		mem.Error = "no " + metricRSS + " in the scraped metrics"
	default:
		mem.Measured = true
		mem.BeforeBytes, mem.AfterBytes = uint64(w.start.rss), uint64(end.rss)
		mem.PerNodeBytes = (end.rss - w.start.rss) / float64(nodes)
	}
	return cpu, mem
}
