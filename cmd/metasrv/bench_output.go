package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/pgmetasrv/metasrv/internal/loadgen"
)

func (b *benchKV) print(r loadgen.KVReport) error {
	out := b.app.stdout
	if b.output == outputJSON {
		return jsonEncode(out, r)
	}
	fmt.Fprintf(out, "bench kv: op=%s clients=%d duration=%s", r.Op, r.Clients, r.Duration)
	if r.Op != loadgen.OpPing {
		fmt.Fprintf(out, " keys=%d value_size=%d", r.Keys, r.ValueSize)
	}
	if r.RangeLimit > 0 {
		fmt.Fprintf(out, " range_limit=%d", r.RangeLimit)
	}
	if r.TxnKeys > 0 {
		fmt.Fprintf(out, " txn_keys=%d", r.TxnKeys)
	}
	if r.Rounds > 1 {
		fmt.Fprintf(out, " rounds=%d", r.Rounds)
	}
	fmt.Fprintln(out)
	// Several rounds add a round column; its name also labels each
	// target's own lines below.
	round, name := "", func(res loadgen.Result) string { return res.Target }
	if r.Rounds > 1 {
		round = "round\t"
		name = func(res loadgen.Result) string { return fmt.Sprintf("%s, round %d", res.Target, res.Round) }
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, round+"target\tops/s\tsrv-cpu/1k-ops\tbench-cpu/1k-ops\tp50\tp90\tp99\tmax\tops\terrors\t")
	for _, res := range r.Results {
		if r.Rounds > 1 {
			fmt.Fprintf(tw, "%d\t", res.Round)
		}
		fmt.Fprintf(tw, "%s\t%.1f\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t\n", res.Target, res.OpsPerSec, cpuPer1k(res.ServerCPU), clientCPUPer1k(res.ClientCPUPer1k),
			loadgen.FormatLatency(res.P50), loadgen.FormatLatency(res.P90), loadgen.FormatLatency(res.P99), loadgen.FormatLatency(res.Max), res.Ops, res.Errors)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for i, x := range r.RoundRatios {
		fmt.Fprintf(out, "ratio metasrv/raw-pg, round %d: ops/s %.2fx, p99 %.2fx\n", i+1, x.OpsPerSec, x.P99)
	}
	if r.Ratio != nil {
		fmt.Fprintf(out, "ratio metasrv/raw-pg: ops/s %.2fx, p99 %.2fx", r.Ratio.OpsPerSec, r.Ratio.P99)
		if n := len(r.RoundRatios); n > 1 {
			fmt.Fprintf(out, " (medians of %d rounds)", n)
		}
		fmt.Fprintln(out)
	}
	for _, res := range r.Results {
		named := res
		named.Target = name(res)
		printServerCPU(out, named)
	}
	for _, res := range r.Results {
		if res.FirstError != "" {
			fmt.Fprintf(out, "first error (%s): %s\n", name(res), res.FirstError)
		}
	}
	return nil
}

// cpuPer1k is the srv-cpu/1k-ops cell: the server's CPU time per 1,000
// operations, "n/a" when it could not be measured, "-" for a target whose
// server is not measured (raw-pg) or with --metrics-url none.
func cpuPer1k(c *loadgen.ServerCPU) string {
	switch {
	case c == nil:
		return "-"
	case !c.Measured:
		return "n/a"
	default:
		return formatSeconds(c.SecondsPer1kOps)
	}
}

// clientCPUPer1k is the bench-cpu/1k-ops cell: the load generator's own CPU
// time per 1,000 operations, "n/a" where the OS does not report it.
func clientCPUPer1k(s *float64) string {
	if s == nil {
		return "n/a"
	}
	return formatSeconds(*s)
}

// printServerCPU says where a target's server CPU figure comes from, or why
// there is none.
func printServerCPU(out io.Writer, res loadgen.Result) {
	c := res.ServerCPU
	if c == nil {
		return
	}
	if !c.Measured {
		fmt.Fprintf(out, "server cpu (%s): not measured: %s\n", res.Target, c.Error)
		return
	}
	fmt.Fprintf(out, "server cpu (%s): %s in %s (%.2f cores) from %s", res.Target,
		formatSeconds(c.Seconds), formatSeconds(res.ElapsedSec), c.Cores, c.Source)
	if c.GRPCCalls != nil {
		fmt.Fprintf(out, ", %d gRPC calls", *c.GRPCCalls)
	}
	fmt.Fprintln(out)
	if c.Warning != "" {
		fmt.Fprintf(out, "warning (%s): %s\n", res.Target, c.Warning)
	}
}

// formatSeconds prints seconds with three significant digits, in the unit
// FormatLatency would pick.
func formatSeconds(s float64) string {
	return loadgen.FormatLatency(time.Duration(s * float64(time.Second)))
}

func jsonEncode(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
