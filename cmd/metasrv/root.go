package main

import (
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pgmetasrv/metasrv/pkg/config"
)

// app is what every subcommand may use: the process environment and output
// streams, passed in rather than read from globals so tests can run the CLI
// in-process.
type app struct {
	environ []string
	stdout  io.Writer
	stderr  io.Writer
}

// warnLogger is the logger of the client-side commands (ctl, bench): only
// warnings and errors, as text on w, so a command's own output stays
// readable.
func warnLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// newRootCommand assembles the CLI. A subcommand is one file with a
// newXxxCommand(a) constructor and one AddCommand line here.
func newRootCommand(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:   "metasrv",
		Short: "Metadata server with PostgreSQL storage and leader election",
		// Errors are printed once, as one line, by run; a usage dump would bury them.
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.AddCommand(
		newStartCommand(a),
		newConfigCommand(a),
		newVersionCommand(a),
		newMigrateCommand(a),
		newCtlCommand(a),
		newBenchCommand(a),
	)
	strictGroups(root)
	return root
}

// strictGroups makes every command that has subcommands refuse an unknown
// one (`metasrv migrate down`) with an error, hence a non-zero exit, where
// cobra would print the help and exit 0 for any group but the root; a group
// given alone still prints its help.
func strictGroups(c *cobra.Command) {
	if c.HasSubCommands() {
		c.Args = unknownSubcommand
		if !c.Runnable() {
			c.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
		}
	}
	for _, sub := range c.Commands() {
		strictGroups(sub)
	}
}

// unknownSubcommand is the Args check of a command group: no positional
// argument is a subcommand it does not have.
func unknownSubcommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += "; did you mean " + strings.Join(s, " or ") + "?"
	}
	return fmt.Errorf("%s (see %s --help)", msg, cmd.CommandPath())
}

// newlines joins a multi-line error (cobra's "Did you mean this?") into the
// one line a failing command prints.
var newlines = regexp.MustCompile(`\s*\n\s*`)

// run executes the CLI and returns the process exit code.
func run(args, environ []string, stdout, stderr io.Writer) int {
	a := &app{environ: environ, stdout: stdout, stderr: stderr}
	root := newRootCommand(a)
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		fmt.Fprintf(stderr, "metasrv: %s\n", newlines.ReplaceAllString(strings.TrimSpace(err.Error()), "; "))
		return 1
	}
	return 0
}

// loadOptions builds and validates the Options of a command that called
// config.AddFlags on its flags.
func (a *app) loadOptions(cmd *cobra.Command) (config.Options, error) {
	path, err := cmd.Flags().GetString(config.FlagConfig)
	if err != nil {
		return config.Options{}, err
	}
	o, err := config.Load(path, cmd.Flags(), a.environ)
	if err != nil {
		return config.Options{}, err
	}
	if err := o.Validate(); err != nil {
		return config.Options{}, err
	}
	return o, nil
}
