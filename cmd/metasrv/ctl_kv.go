package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

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

// rangePage is how many pairs one call of `kv range` asks for at first. A
// page whose answer is over a message size limit (the server's
// grpc.max_send_message_size or the client's receive limit, both
// RESOURCE_EXHAUSTED) is asked again at half the size, down to one pair.
const rangePage = 1024

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
(and "more": true in JSON).

The range is read in pages (each a Range with a limit, going on from the last key
+ "\x00" while more keys follow), printed as they arrive, so a range of any size can be
listed whatever the message size limits; a page too large to send is asked again at half
the size. Pages are read one after another, not at one point in time: keys written
meanwhile may or may not be listed. --timeout bounds the whole listing.`,
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
				p := o.newRangePrinter(keysOnly)
				more, err := pageRange(ctx, o.reader(c), kv.RangeRequest{Key: key, RangeEnd: end, KeysOnly: keysOnly}, limit, p.print)
				if err != nil {
					// What was printed stays printed; the JSON document is
					// left open, so it does not parse as a complete answer.
					return failed(fmt.Sprintf("kv range %q", key), err)
				}
				return p.finish(more, limit)
			})
		},
	}
	cmd.Flags().BoolVar(&prefix, "prefix", false, "every key that starts with KEY")
	cmd.Flags().BoolVar(&fromKey, "from-key", false, "every key >= KEY")
	cmd.Flags().BoolVar(&keysOnly, "keys-only", false, "print keys without values")
	cmd.Flags().Int64Var(&limit, "limit", 0, "return at most N pairs (0: no limit)")
	return cmd
}

// pageRange reads req's range page by page, at most limit pairs in all (0:
// every pair), handing each page to emit in key order. more reports that
// limit cut the listing.
func pageRange(ctx context.Context, b kv.Backend, req kv.RangeRequest, limit int64, emit func([]kv.KeyValue) error) (more bool, err error) {
	page := int64(rangePage)
	left := limit
	for {
		req.Limit = page
		if limit > 0 {
			req.Limit = min(page, left)
		}
		resp, err := b.Range(ctx, req)
		if status.Code(err) == codes.ResourceExhausted && req.Limit > 1 {
			page = req.Limit / 2
			continue
		}
		if err != nil {
			return false, err
		}
		if err := emit(resp.Kvs); err != nil {
			return false, err
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return false, nil
		}
		if limit > 0 {
			if left -= int64(len(resp.Kvs)); left <= 0 {
				return true, nil
			}
		}
		last := resp.Kvs[len(resp.Kvs)-1].Key
		req.Key = append(append(make([]byte, 0, len(last)+1), last...), 0)
	}
}

// rangePrinter prints pages as they come: text lines, or one JSON document
// written piece by piece, in the layout writeJSON would give it.
type rangePrinter struct {
	o        *ctlOptions
	keysOnly bool
	count    int
}

func (o *ctlOptions) newRangePrinter(keysOnly bool) *rangePrinter {
	return &rangePrinter{o: o, keysOnly: keysOnly}
}

func (p *rangePrinter) print(kvs []kv.KeyValue) error {
	w := p.o.app.stdout
	for _, pair := range kvs {
		if p.o.output == outputJSON {
			sep := ",\n"
			if p.count == 0 {
				sep = "{\n  \"kvs\": [\n"
			}
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			enc.SetIndent("    ", "  ")
			if err := enc.Encode(jsonPair(pair, !p.keysOnly)); err != nil {
				return err
			}
			if _, err := fmt.Fprintf(w, "%s    %s", sep, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))); err != nil {
				return err
			}
			p.count++
			continue
		}
		p.count++
		if _, err := fmt.Fprintln(w, display(pair.Key)); err != nil {
			return err
		}
		if p.keysOnly {
			continue
		}
		if _, err := fmt.Fprintln(w, display(pair.Value)); err != nil {
			return err
		}
	}
	return nil
}

func (p *rangePrinter) finish(more bool, limit int64) error {
	if p.o.output == outputJSON {
		open := "\n  ]"
		if p.count == 0 {
			open = "{\n  \"kvs\": []"
		}
		_, err := fmt.Fprintf(p.o.app.stdout, "%s,\n  \"count\": %d,\n  \"more\": %t\n}\n", open, p.count, more)
		return err
	}
	if more {
		_, err := fmt.Fprintf(p.o.app.stderr, "(more keys after these: --limit %d reached)\n", limit)
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
