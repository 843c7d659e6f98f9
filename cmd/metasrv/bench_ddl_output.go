package main

import (
	"cmp"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/pgmetasrv/metasrv/internal/ddlload"
	"github.com/pgmetasrv/metasrv/internal/loadgen"
)

func (b *benchDDL) print(r ddlload.Report) error {
	out := b.app.stdout
	if b.output == outputJSON {
		return jsonEncode(out, r)
	}
	fmt.Fprintf(out, "bench ddl: clients=%d tables=%d datanodes=%d partitions=%d database=%s.%s leader=%s\n",
		r.Clients, r.Tables, r.Datanodes, r.Partitions, r.Catalog, r.Schema, r.Leader)
	fmt.Fprintf(out, "connection: %s\n", r.Connection)
	fmt.Fprintf(out, "warm-up: %d of %d datanodes got their first region lease in %s\n", r.Warmup.Leased, r.Datanodes, formatSeconds(r.Warmup.Seconds))
	phases := []ddlload.Phase{r.Create}
	if r.Drop != nil {
		phases = append(phases, *r.Drop)
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "op\ttables/s\tsrv-cpu/1k\tp50\tp90\tp99\tmax\tsucceeded\terrors\tnot-leader\tretries\t")
	for _, p := range phases {
		l := p.Latency
		fmt.Fprintf(tw, "%s\t%.1f\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t\n", p.Op, p.PerSec, cpuPer1k(p.ServerCPU),
			loadgen.FormatLatency(l.P50), loadgen.FormatLatency(l.P90), loadgen.FormatLatency(l.P99), loadgen.FormatLatency(l.Max),
			p.Succeeded, p.Errors, p.NotLeader, p.Retries)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, p := range phases {
		if len(p.ErrorsByCode) > 0 {
			fmt.Fprintf(out, "errors (%s): %s; first: %s\n", p.Op, formatCounts(p.ErrorsByCode), p.FirstError)
		}
	}
	printCheck(out, r.CreateCheck, false)
	if r.DropCheck != nil {
		printCheck(out, *r.DropCheck, true)
	}
	for _, p := range phases {
		printServerCPU(out, loadgen.Result{Target: "leader, " + p.Op, ElapsedSec: p.Seconds, ServerCPU: p.ServerCPU})
		if c := p.LoadCPU; c != nil {
			fmt.Fprintf(out, "load generator cpu (this process, %s): %s in %s (%.2f cores)\n", p.Op, formatSeconds(c.Seconds), formatSeconds(p.Seconds), c.Cores)
		}
	}
	switch {
	case r.DropDatabaseError != "":
		fmt.Fprintf(out, "drop database %s.%s failed: %s\n", r.Catalog, r.Schema, r.DropDatabaseError)
	case r.Drop != nil:
		fmt.Fprintf(out, "database %s.%s dropped\n", r.Catalog, r.Schema)
	default:
		fmt.Fprintf(out, "database %s.%s and its tables are left in place (--drop removes them)\n", r.Catalog, r.Schema)
	}
	return nil
}

// printCheck prints what the check after a phase read, and its problems.
func printCheck(out io.Writer, c ddlload.Check, afterDrop bool) {
	verdict := "ok"
	if !c.OK() {
		verdict = fmt.Sprintf("%d problems", c.ProblemCount)
	}
	per := make([]string, len(c.RegionsPerDatanode))
	for i, n := range c.RegionsPerDatanode {
		per[i] = fmt.Sprint(n)
	}
	regions := fmt.Sprintf("%d regions on the datanodes (%s per datanode)", c.Regions, cmp.Or(strings.Join(per, "/"), "none"))
	if afterDrop {
		fmt.Fprintf(out, "check after drop table: %d table names (expected %d), %d tombstones, %d routes or table infos left, %s: %s\n",
			c.TableNames, c.ExpectedTables, c.Tombstones, c.Routes, regions, verdict)
	} else {
		fmt.Fprintf(out, "check after create table: %d table names (expected %d), %d routes as created, %s: %s\n",
			c.TableNames, c.ExpectedTables, c.Routes, regions, verdict)
	}
	for _, p := range c.Problems {
		fmt.Fprintf(out, "  problem: %s\n", p)
	}
	if more := c.ProblemCount - len(c.Problems); more > 0 {
		fmt.Fprintf(out, "  and %d more problems\n", more)
	}
}
