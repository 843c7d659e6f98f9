package main

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/pgmetasrv/metasrv/internal/hbload"
	"github.com/pgmetasrv/metasrv/internal/loadgen"
)

func (b *benchHeartbeat) print(r hbload.Report) error {
	out := b.app.stdout
	if b.output == outputJSON {
		return jsonEncode(out, r)
	}
	pools := "pools"
	if r.Pools == 1 {
		pools = "pool"
	}
	fmt.Fprintf(out, "bench heartbeat: role=%s nodes=%d interval=%s duration=%s conns-per=%d (%d %s) ramp=%s\n",
		r.Role, r.Nodes, r.Interval, r.Duration, r.ConnsPer, r.Pools, pools, r.Ramp)
	fmt.Fprintf(out, "handshakes: %d; heartbeat interval %s, retry interval %s; leader %s\n", r.Handshakes.Total,
		formatCounts(r.Handshakes.Intervals), formatCounts(r.Handshakes.RetryIntervals), formatCounts(r.Handshakes.Leaders))
	w := r.Warmup
	fmt.Fprintf(out, "warm-up: %d of %d nodes handshaken in %s (%d errors, %d reconnects, %d not-leader)\n",
		w.Handshaken, r.Nodes, formatSeconds(w.Seconds), w.Errors, w.Reconnects, w.NotLeader)

	m := r.Window
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "hb/s\texpected/s\tsrv-cpu/1k-hb\tp50\tp90\tp99\tmax\tresponses\terrors\treconnects\tnot-leader\t")
	fmt.Fprintf(tw, "%.1f\t%.1f\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t\n", m.HeartbeatsPerSec, m.ExpectedPerSec, cpuPer1k(r.ServerCPU),
		loadgen.FormatLatency(m.Latency.P50), loadgen.FormatLatency(m.Latency.P90), loadgen.FormatLatency(m.Latency.P99),
		loadgen.FormatLatency(m.Latency.Max), m.Responses, m.Errors, m.Reconnects, m.NotLeader)
	if err := tw.Flush(); err != nil {
		return err
	}
	l := r.WholeRun
	fmt.Fprintf(out, "whole run, warm-up included (the nodes' histograms): p50 %s, p90 %s, p99 %s, max %s over %d beats\n",
		loadgen.FormatLatency(l.P50), loadgen.FormatLatency(l.P90), loadgen.FormatLatency(l.P99), loadgen.FormatLatency(l.Max), l.Count)
	printServerCPU(out, loadgen.Result{Target: "leader", ElapsedSec: m.Seconds, ServerCPU: r.ServerCPU})
	printServerMemory(out, r.ServerMemory)
	if c := r.LoadCPU; c != nil {
		fmt.Fprintf(out, "load generator cpu (this process): %s in %s (%.2f cores)\n", formatSeconds(c.Seconds), formatSeconds(m.Seconds), c.Cores)
	}
	if w.FirstWarning != "" {
		fmt.Fprintf(out, "first node warning (warm-up, %d in all): %s\n", w.Warnings, w.FirstWarning)
	}
	if m.FirstWarning != "" {
		fmt.Fprintf(out, "first node warning (window, %d in all): %s\n", m.Warnings, m.FirstWarning)
	}
	for _, s := range r.Warnings {
		fmt.Fprintf(out, "warning: %s\n", s)
	}
	return nil
}

// printServerMemory prints the leader's RSS before the nodes and after the
// window, or why it is missing.
func printServerMemory(out io.Writer, m *hbload.ServerMemory) {
	switch {
	case m == nil:
	case !m.Measured:
		fmt.Fprintf(out, "server rss (leader): not measured: %s\n", m.Error)
	default:
		sign := "+"
		if m.PerNodeBytes < 0 {
			sign = "-"
		}
		fmt.Fprintf(out, "server rss (leader): %s before the nodes, %s after the window (%s%s per node) from %s\n",
			formatBytes(int64(m.BeforeBytes)), formatBytes(int64(m.AfterBytes)), sign, formatBytes(int64(math.Abs(m.PerNodeBytes))), m.Source)
	}
}

// formatCounts prints "3s (1000), 200ms (2)", most frequent first.
func formatCounts(m map[string]uint64) string {
	if len(m) == 0 {
		return "none"
	}
	keys := slices.SortedFunc(maps.Keys(m), func(a, b string) int {
		return cmp.Or(cmp.Compare(m[b], m[a]), strings.Compare(a, b))
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s (%d)", k, m[k])
	}
	return strings.Join(parts, ", ")
}
