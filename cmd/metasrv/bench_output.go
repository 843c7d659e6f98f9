package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/pgmetasrv/metasrv/internal/loadgen"
)

func (b *benchKV) print(r loadgen.KVReport) error {
	out := b.app.stdout
	if b.output == outputJSON {
		return jsonEncode(out, r)
	}
	fmt.Fprintf(out, "bench kv: op=%s clients=%d duration=%s keys=%d value_size=%d", r.Op, r.Clients, r.Duration, r.Keys, r.ValueSize)
	if r.RangeLimit > 0 {
		fmt.Fprintf(out, " range_limit=%d", r.RangeLimit)
	}
	fmt.Fprintln(out)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\tops/s\tp50\tp90\tp99\tmax\tops\terrors\t")
	for _, res := range r.Results {
		fmt.Fprintf(tw, "%s\t%.1f\t%s\t%s\t%s\t%s\t%d\t%d\t\n", res.Target, res.OpsPerSec,
			loadgen.FormatLatency(res.P50), loadgen.FormatLatency(res.P90), loadgen.FormatLatency(res.P99), loadgen.FormatLatency(res.Max), res.Ops, res.Errors)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if r.Ratio != nil {
		fmt.Fprintf(out, "ratio metasrv/raw-pg: ops/s %.2fx, p99 %.2fx\n", r.Ratio.OpsPerSec, r.Ratio.P99)
	}
	for _, res := range r.Results {
		if res.FirstError != "" {
			fmt.Fprintf(out, "first error (%s): %s\n", res.Target, res.FirstError)
		}
	}
	return nil
}

func jsonEncode(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
