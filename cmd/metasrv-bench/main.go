// Command metasrv-bench holds the benchmarks that run metasrv nodes as child
// processes and inject faults into them (SIGKILL, SIGSTOP, partitions
// through a TCP proxy, pg_terminate_backend). It is kept out of the
// metasrv binary, which links no fault-injection code; `metasrv bench kv`
// needs none and stays there.
package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes the CLI and returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	root := &cobra.Command{
		Use:   "metasrv-bench",
		Short: "Fault-injection benchmarks of a metasrv cluster run as child processes",
		// Errors are printed once, as one line; a usage dump would bury them.
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newFailoverCommand(stdout, stderr))
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		fmt.Fprintf(stderr, "metasrv-bench: %s\n", strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", " ")), " "))
		return 1
	}
	return 0
}
