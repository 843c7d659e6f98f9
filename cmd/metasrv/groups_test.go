package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"
)

// groups lists every command that has subcommands, as the argument paths
// that reach it (nil: the root).
func groups(c *cobra.Command, path []string) [][]string {
	var out [][]string
	if c.HasSubCommands() {
		out = append(out, path)
	}
	for _, sub := range c.Commands() {
		if sub.Name() == "help" || sub.Name() == "completion" {
			continue
		}
		out = append(out, groups(sub, append(append([]string(nil), path...), sub.Name()))...)
	}
	return out
}

// An unknown subcommand of any command group fails with one line naming it,
// as `metasrv stat` does, instead of printing help and exiting 0.
func TestUnknownSubcommandFailsInEveryGroup(t *testing.T) {
	t.Parallel()
	all := groups(newRootCommand(&app{}), nil)
	require.GreaterOrEqual(t, len(all), 4, "root, migrate, ctl and its groups")
	for _, path := range all {
		name := "metasrv " + strings.Join(path, " ")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			code := run(append(append([]string(nil), path...), "down"), nil, &stdout, &stderr)
			require.Equal(t, 1, code, "stdout: %s\nstderr: %s", stdout.String(), stderr.String())
			require.Contains(t, stderr.String(), `unknown command "down"`)
			require.NotContains(t, stdout.String()+stderr.String(), "Usage:")
		})
		// The group alone still prints its help and succeeds.
		t.Run(name+" alone", func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			code := run(path, nil, &stdout, &stderr)
			require.Equal(t, 0, code, stderr.String())
			require.Contains(t, stdout.String(), "Usage:")
		})
	}
}
