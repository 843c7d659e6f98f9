package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/pgmetasrv/metasrv/pkg/client"
	"github.com/pgmetasrv/metasrv/pkg/kv"
)

var (
	// errKeyNotFound makes `kv get` of an absent key exit non-zero.
	errKeyNotFound = errors.New("key not found")
	// errCASFailed makes a `kv cas` whose expectation did not hold exit
	// non-zero, so scripts can branch on the exit status.
	errCASFailed = errors.New("compare failed")
)

func newCtlKVCommand(o *ctlOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "kv",
		Short: "Read and write the key-value store",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(
		newCtlKVGetCommand(o),
		newCtlKVPutCommand(o),
		newCtlKVRangeCommand(o),
		newCtlKVDelCommand(o),
		newCtlKVCASCommand(o),
	)
	return cmd
}

func newCtlKVGetCommand(o *ctlOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "get KEY",
		Short: "Print the value of KEY (exit status 1 when the key is absent)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			key, err := o.key(args[0])
			if err != nil {
				return err
			}
			return o.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				got, err := kv.Get(ctx, o.reader(c), key)
				if err != nil {
					return failed(fmt.Sprintf("kv get %q", key), err)
				}
				if o.output == outputJSON {
					out := struct {
						Found bool `json:"found"`
						jsonKV
					}{Found: got != nil, jsonKV: jsonKey(key)}
					if got != nil {
						out.jsonKV = jsonPair(*got, true)
					}
					if err := writeJSON(o.app.stdout, out); err != nil {
						return err
					}
				} else if got != nil {
					if _, err := fmt.Fprintln(o.app.stdout, display(got.Value)); err != nil {
						return err
					}
				}
				if got == nil {
					return fmt.Errorf("kv get %q: %w", key, errKeyNotFound)
				}
				return nil
			})
		},
	}
}

func newCtlKVPutCommand(o *ctlOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "put KEY [VALUE]",
		Short: `Store VALUE under KEY; the value is read from stdin (raw bytes, to EOF) when VALUE is omitted or "-"`,
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			key, err := o.key(args[0])
			if err != nil {
				return err
			}
			var value []byte
			if len(args) == 1 || args[1] == "-" {
				if value, err = io.ReadAll(cmd.InOrStdin()); err != nil {
					return fmt.Errorf("read the value from stdin: %w", err)
				}
			} else if value, err = o.arg("VALUE", args[1]); err != nil {
				return err
			}
			return o.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				if _, err := c.Put(ctx, kv.PutRequest{Key: key, Value: value}); err != nil {
					return failed(fmt.Sprintf("kv put %q", key), err)
				}
				if o.output == outputJSON {
					return writeJSON(o.app.stdout, map[string]bool{"ok": true})
				}
				_, err := fmt.Fprintln(o.app.stdout, "OK")
				return err
			})
		},
	}
}

// rangeArgs turns KEY [END] with --prefix / --from-key into a key range.
// An empty KEY with --prefix selects every key.
func (o *ctlOptions) rangeArgs(args []string, prefix, fromKey bool) (key, end []byte, err error) {
	if key, err = o.arg("KEY", args[0]); err != nil {
		return nil, nil, err
	}
	switch {
	case len(args) == 2 && (prefix || fromKey):
		return nil, nil, errors.New("give END or one of --prefix / --from-key, not both")
	case prefix && fromKey:
		return nil, nil, errors.New("--prefix and --from-key exclude each other")
	case len(args) == 2:
		if end, err = o.arg("END", args[1]); err != nil {
			return nil, nil, err
		}
		if len(end) == 0 {
			return nil, nil, errors.New(`END is empty; use --from-key for "every key from KEY on"`)
		}
	case prefix && len(key) == 0:
		// Every key: the smallest non-empty key onwards.
		key, end = []byte{0}, []byte{0}
	case prefix:
		end = kv.PrefixEnd(key)
	case fromKey:
		end = []byte{0}
	}
	if len(key) == 0 {
		return nil, nil, errors.New(`KEY is empty; keys are non-empty (use --prefix "" for every key)`)
	}
	return key, end, nil
}

func newCtlKVRangeCommand(o *ctlOptions) *cobra.Command {
	var (
		prefix, fromKey, keysOnly bool
		limit                     int64
	)
	cmd := &cobra.Command{
		Use:   "range KEY [END]",
		Short: "List the keys in [KEY, END), or starting with KEY (--prefix), or from KEY on (--from-key)",
		Long: `List key-value pairs in key order. Text output: each key on a line, then its value on the
next (keys only with --keys-only). When --limit cut the listing, a note goes to stderr
(and "more": true in JSON).`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			key, end, err := o.rangeArgs(args, prefix, fromKey)
			if err != nil {
				return err
			}
			if limit < 0 {
				return fmt.Errorf("--limit %d: expected 0 (no limit) or more", limit)
			}
			return o.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				resp, err := o.reader(c).Range(ctx, kv.RangeRequest{Key: key, RangeEnd: end, Limit: limit, KeysOnly: keysOnly})
				if err != nil {
					return failed(fmt.Sprintf("kv range %q", key), err)
				}
				return o.printRange(resp, keysOnly, limit)
			})
		},
	}
	cmd.Flags().BoolVar(&prefix, "prefix", false, "every key that starts with KEY")
	cmd.Flags().BoolVar(&fromKey, "from-key", false, "every key >= KEY")
	cmd.Flags().BoolVar(&keysOnly, "keys-only", false, "print keys without values")
	cmd.Flags().Int64Var(&limit, "limit", 0, "return at most N pairs (0: no limit)")
	return cmd
}

func (o *ctlOptions) printRange(resp kv.RangeResponse, keysOnly bool, limit int64) error {
	if o.output == outputJSON {
		out := struct {
			Kvs   []jsonKV `json:"kvs"`
			Count int      `json:"count"`
			More  bool     `json:"more"`
		}{Kvs: make([]jsonKV, 0, len(resp.Kvs)), Count: len(resp.Kvs), More: resp.More}
		for _, p := range resp.Kvs {
			out.Kvs = append(out.Kvs, jsonPair(p, !keysOnly))
		}
		return writeJSON(o.app.stdout, out)
	}
	for _, p := range resp.Kvs {
		if _, err := fmt.Fprintln(o.app.stdout, display(p.Key)); err != nil {
			return err
		}
		if keysOnly {
			continue
		}
		if _, err := fmt.Fprintln(o.app.stdout, display(p.Value)); err != nil {
			return err
		}
	}
	if resp.More {
		_, err := fmt.Fprintf(o.app.stderr, "(more keys after these: --limit %d reached)\n", limit)
		return err
	}
	return nil
}

func newCtlKVDelCommand(o *ctlOptions) *cobra.Command {
	var prefix, fromKey bool
	cmd := &cobra.Command{
		Use:   "del KEY [END]",
		Short: "Delete KEY, the keys in [KEY, END), starting with KEY (--prefix) or from KEY on (--from-key); prints how many were deleted",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			// An empty prefix would delete the whole store; ctl does not
			// offer that as a one-word slip.
			if k, err := o.arg("KEY", args[0]); err == nil && len(k) == 0 {
				return errors.New("KEY is empty; kv del does not delete every key, give a non-empty key or prefix")
			}
			key, end, err := o.rangeArgs(args, prefix, fromKey)
			if err != nil {
				return err
			}
			return o.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				resp, err := c.DeleteRange(ctx, kv.DeleteRangeRequest{Key: key, RangeEnd: end})
				if err != nil {
					return failed(fmt.Sprintf("kv del %q", key), err)
				}
				if o.output == outputJSON {
					return writeJSON(o.app.stdout, map[string]int64{"deleted": resp.Deleted})
				}
				_, err = fmt.Fprintln(o.app.stdout, resp.Deleted)
				return err
			})
		},
	}
	cmd.Flags().BoolVar(&prefix, "prefix", false, "every key that starts with KEY")
	cmd.Flags().BoolVar(&fromKey, "from-key", false, "every key >= KEY")
	return cmd
}

func newCtlKVCASCommand(o *ctlOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "cas KEY EXPECT VALUE",
		Short: `Store VALUE under KEY only if KEY holds EXPECT ("" = KEY must be absent); exit status 1 when it did not`,
		Long: `Compare-and-put. Prints OK when VALUE was stored. Otherwise prints "FAILED key absent" or
"FAILED current value: V" and exits with status 1.`,
		Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			key, err := o.key(args[0])
			if err != nil {
				return err
			}
			expect, err := o.arg("EXPECT", args[1])
			if err != nil {
				return err
			}
			value, err := o.arg("VALUE", args[2])
			if err != nil {
				return err
			}
			return o.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				resp, err := c.CompareAndPut(ctx, kv.CompareAndPutRequest{Key: key, Expect: expect, Value: value})
				if err != nil {
					return failed(fmt.Sprintf("kv cas %q", key), err)
				}
				if err := o.printCAS(resp); err != nil {
					return err
				}
				if !resp.Success {
					return fmt.Errorf("kv cas %q: %w", key, errCASFailed)
				}
				return nil
			})
		},
	}
}

func (o *ctlOptions) printCAS(resp kv.CompareAndPutResponse) error {
	if o.output == outputJSON {
		out := struct {
			Succeeded bool    `json:"succeeded"`
			Current   *jsonKV `json:"current"`
		}{Succeeded: resp.Success}
		if !resp.Success && resp.PrevKv != nil {
			cur := jsonPair(*resp.PrevKv, true)
			out.Current = &cur
		}
		return writeJSON(o.app.stdout, out)
	}
	var err error
	switch {
	case resp.Success:
		_, err = fmt.Fprintln(o.app.stdout, "OK")
	case resp.PrevKv == nil:
		_, err = fmt.Fprintln(o.app.stdout, "FAILED key absent")
	default:
		_, err = fmt.Fprintln(o.app.stdout, "FAILED current value: "+display(resp.PrevKv.Value))
	}
	return err
}
