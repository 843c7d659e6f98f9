package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/pgmetasrv/metasrv/pkg/client"
)

var procedureStateNames = []client.ProcedureState{
	client.ProcedureRunning, client.ProcedureRetrying, client.ProcedureRollingBack,
	client.ProcedureDone, client.ProcedureRolledBack, client.ProcedureFailed,
}

// errProcedureNotDone makes `procedure wait` exit non-zero when the
// procedure ended in any final state but done.
var errProcedureNotDone = errors.New("procedure did not complete")

func newCtlProcedureCommand(o *ctlOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "procedure",
		Aliases: []string{"procedures", "proc"},
		Short:   "Submit, inspect and wait for durable procedures",
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(
		newCtlProcedureListCommand(o),
		newCtlProcedureGetCommand(o),
		newCtlProcedureSubmitCommand(o),
		newCtlProcedureWaitCommand(o),
	)
	return cmd
}

func newCtlProcedureListCommand(o *ctlOptions) *cobra.Command {
	var (
		states []string
		typ    string
		limit  int
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List procedures, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := client.ListProceduresOptions{Type: typ}
			for _, s := range states {
				st := client.ProcedureState(strings.TrimSpace(s))
				if !slices.Contains(procedureStateNames, st) {
					return fmt.Errorf("--state %q: expected one of %s", s, joinStates())
				}
				opts.States = append(opts.States, st)
			}
			if limit < 0 {
				return fmt.Errorf("--limit %d: expected 0 (no limit) or more", limit)
			}
			return o.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				procs := []client.Procedure{}
				for {
					if limit > 0 {
						opts.PageSize = limit - len(procs)
					}
					page, err := c.ListProcedures(ctx, opts)
					if err != nil {
						return failed("procedure list", err)
					}
					procs = append(procs, page.Procedures...)
					if page.NextPageToken == "" || (limit > 0 && len(procs) >= limit) {
						break
					}
					opts.PageToken = page.NextPageToken
				}
				if limit > 0 && len(procs) > limit {
					procs = procs[:limit]
				}
				if o.output == outputJSON {
					return writeJSON(o.app.stdout, map[string][]client.Procedure{"procedures": procs})
				}
				return printProcedureTable(o.app.stdout, procs)
			})
		},
	}
	cmd.Flags().StringSliceVar(&states, "state", nil, "keep only these states (repeat or comma-separate): "+joinStates())
	cmd.Flags().StringVar(&typ, "type", "", "keep only procedures of this type")
	cmd.Flags().IntVar(&limit, "limit", 0, "list at most N procedures (0: all)")
	return cmd
}

func joinStates() string {
	names := make([]string, len(procedureStateNames))
	for i, s := range procedureStateNames {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

func printProcedureTable(w io.Writer, procs []client.Procedure) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTYPE\tSTATE\tSTEP\tSUBMITTED\tUPDATED\tERROR")
	for _, p := range procs {
		errText := "-"
		if p.Error != "" {
			errText = display([]byte(p.Error))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n",
			display([]byte(p.ID)), display([]byte(p.Type)), display([]byte(p.State)), p.Step,
			formatTime(p.SubmittedAt), formatTime(p.UpdatedAt), errText)
	}
	return tw.Flush()
}

// printProcedure shows one procedure, a field per line.
func (o *ctlOptions) printProcedure(p client.Procedure) error {
	if o.output == outputJSON {
		return writeJSON(o.app.stdout, p)
	}
	tw := tabwriter.NewWriter(o.app.stdout, 0, 4, 1, ' ', 0)
	fmt.Fprintf(tw, "id:\t%s\n", display([]byte(p.ID)))
	fmt.Fprintf(tw, "type:\t%s\n", display([]byte(p.Type)))
	fmt.Fprintf(tw, "state:\t%s\n", display([]byte(p.State)))
	fmt.Fprintf(tw, "step:\t%d\n", p.Step)
	fmt.Fprintf(tw, "submitted:\t%s\n", formatTime(p.SubmittedAt))
	fmt.Fprintf(tw, "updated:\t%s\n", formatTime(p.UpdatedAt))
	if p.Error != "" {
		fmt.Fprintf(tw, "error:\t%s\n", display([]byte(p.Error)))
	}
	for _, k := range p.LockKeys {
		mode := "shared"
		if k.Exclusive {
			mode = "exclusive"
		}
		fmt.Fprintf(tw, "lock:\t%s (%s)\n", display([]byte(k.Name)), mode)
	}
	if len(p.Output) > 0 {
		fmt.Fprintf(tw, "output:\t%s\n", display(p.Output))
	}
	return tw.Flush()
}

func newCtlProcedureGetCommand(o *ctlOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "get ID",
		Short: "Show one procedure",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				p, err := c.GetProcedure(ctx, args[0])
				if err != nil {
					return failed(fmt.Sprintf("procedure get %q", args[0]), err)
				}
				return o.printProcedure(p)
			})
		},
	}
}

func newCtlProcedureSubmitCommand(o *ctlOptions) *cobra.Command {
	var wait bool
	cmd := &cobra.Command{
		Use:   "submit TYPE [ARGS_JSON]",
		Short: `Start a procedure of a registered TYPE with JSON arguments (default {}; "-" reads them from stdin); prints its id`,
		Long: `Start a procedure of TYPE with JSON arguments (default {}; "-" reads them from stdin) and print its id.

The metasrv binary itself registers no procedure type: submit works only against a server
built with procedure types of its own, and this binary's servers refuse every TYPE.
list, get and wait work for any procedure.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			argsJSON := []byte("{}")
			if len(args) == 2 {
				argsJSON = []byte(args[1])
				if args[1] == "-" {
					var err error
					if argsJSON, err = io.ReadAll(cmd.InOrStdin()); err != nil {
						return fmt.Errorf("read ARGS_JSON from stdin: %w", err)
					}
				}
			}
			if !json.Valid(argsJSON) {
				return fmt.Errorf("ARGS_JSON %q is not valid JSON", argsJSON)
			}
			return o.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				id, err := c.SubmitProcedure(ctx, args[0], argsJSON)
				if err != nil {
					if strings.Contains(err.Error(), "RegisterLoader") || strings.Contains(err.Error(), "unknown procedure type") {
						// The server's wording is for Go programmers.
						return fmt.Errorf("procedure submit %q: the server has no procedure type %q: the metasrv binary registers no procedure type, only a server built with its own can run one", args[0], args[0])
					}
					return failed(fmt.Sprintf("procedure submit %q", args[0]), err)
				}
				if wait {
					return o.waitProcedure(ctx, c, id)
				}
				if o.output == outputJSON {
					return writeJSON(o.app.stdout, map[string]string{"id": id})
				}
				_, err = fmt.Fprintln(o.app.stdout, display([]byte(id)))
				return err
			})
		},
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "wait (within --timeout) until the procedure ends, then show it as `procedure wait` does")
	return cmd
}

func newCtlProcedureWaitCommand(o *ctlOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "wait ID",
		Short: "Wait (within --timeout) until a procedure ends and show it; exit status 1 unless it ended done",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				return o.waitProcedure(ctx, c, args[0])
			})
		},
	}
}

func (o *ctlOptions) waitProcedure(ctx context.Context, c *client.Client, id string) error {
	p, err := c.WaitProcedure(ctx, id)
	if err != nil {
		return failed(fmt.Sprintf("procedure wait %q", id), err)
	}
	if err := o.printProcedure(p); err != nil {
		return err
	}
	if p.State != client.ProcedureDone {
		return fmt.Errorf("procedure %q ended %s: %w", id, p.State, errProcedureNotDone)
	}
	return nil
}
