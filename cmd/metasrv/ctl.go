package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/status"

	"github.com/pgmetasrv/metasrv/pkg/client"
	"github.com/pgmetasrv/metasrv/pkg/kv"
)

// envCtlEndpoints supplies --endpoints when the flag is not given.
const envCtlEndpoints = "METASRVCTL_ENDPOINTS"

const (
	outputText = "text"
	outputJSON = "json"

	consistencyLinearizable = "linearizable"
	consistencySerializable = "serializable"
)

// ctlOptions holds the persistent flags of `metasrv ctl`, filled by cobra
// before a subcommand runs.
type ctlOptions struct {
	app         *app
	endpoints   []string
	timeout     time.Duration
	output      string
	consistency string
	hex         bool

	tls           bool
	tlsCA         string
	tlsCert       string
	tlsKey        string
	tlsServerName string
}

func newCtlCommand(a *app) *cobra.Command {
	o := &ctlOptions{app: a}
	cmd := &cobra.Command{
		Use:   "ctl",
		Short: "Command-line client of a metasrv cluster (key-value store, leader, members, GreptimeDB nodes, procedures)",
		Long: `Command-line client of a metasrv cluster.

Endpoints come from --endpoints, else from $` + envCtlEndpoints + ` (comma-separated), else 127.0.0.1:3002.
Any subset of the cluster works: the leader is found from them.

Output (-o text, the default): values are printed as they are when they are printable UTF-8
that neither is empty, starts with a double quote nor has leading or trailing spaces;
otherwise they are printed Go-quoted ("a\x00b"), so raw bytes never reach the terminal.

Output (-o json), one JSON document on stdout. A key or value is an object's fields
  "key", "key_b64", "value", "value_b64":
the *_b64 field (standard base64) is always present; the plain string only when the bytes are
valid UTF-8. Shapes:
  kv get       {"found":true,"key":..,"key_b64":..,"value":..,"value_b64":..}
               or {"found":false,"key":..,"key_b64":..} (exit status 1)
  kv put       {"ok":true}
  kv range     {"kvs":[{"key":..,"key_b64":..,"value":..,"value_b64":..}],"count":N,"more":bool}
  kv del       {"deleted":N}
  kv cas       {"succeeded":bool,"current":null|{"key":..,"value":..,..}} (exit status 1 when not succeeded)
  leader       {"addr":..,"term":N}
  members      {"members":[{"addr":..,"is_leader":bool,"version":..,...}]}
  nodes        {"nodes":[{"role":..,"id":..,"addr":..,...,"lease_current":bool}]}
  procedure    list {"procedures":[...]}, get/wait: one procedure object, submit {"id":..}

Errors are one line on stderr and a non-zero exit status.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	f := cmd.PersistentFlags()
	f.StringSliceVar(&o.endpoints, "endpoints", nil, "metasrv gRPC addresses host:port, comma-separated (default $"+envCtlEndpoints+" or 127.0.0.1:3002)")
	f.DurationVar(&o.timeout, "timeout", 10*time.Second, "deadline of the whole command, connecting and retries included; one attempt on one node may take half of it")
	f.StringVarP(&o.output, "output", "o", outputText, "output format: text or json")
	f.StringVar(&o.consistency, "consistency", consistencyLinearizable, "reads: linearizable (from the leader) or serializable (any node, from the durable store)")
	f.BoolVar(&o.hex, "hex", false, "KEY, END, EXPECT and VALUE arguments are hex-encoded (stdin values are always raw bytes)")
	f.BoolVar(&o.tls, "tls", false, "connect with TLS, verifying servers with the system roots (implied by the other --tls-* flags)")
	f.StringVar(&o.tlsCA, "tls-ca", "", "PEM file of the CA that signs the servers' certificates")
	f.StringVar(&o.tlsCert, "tls-cert", "", "PEM client certificate, for servers that verify clients (needs --tls-key)")
	f.StringVar(&o.tlsKey, "tls-key", "", "PEM key of --tls-cert")
	f.StringVar(&o.tlsServerName, "tls-server-name", "", "name to verify in the servers' certificates instead of the endpoint host")
	cmd.AddCommand(
		newCtlKVCommand(o),
		newCtlLeaderCommand(o),
		newCtlMembersCommand(o),
		newCtlNodesCommand(o),
		newCtlTableCommand(o),
		newCtlProcedureCommand(o),
		newCtlRegionCommand(o),
	)
	return cmd
}

// validate checks the flags that do not need the network, so bad input is
// refused before anything is sent.
func (o *ctlOptions) validate() error {
	switch o.output {
	case outputText, outputJSON:
	default:
		return fmt.Errorf("--output %q: expected text or json", o.output)
	}
	switch o.consistency {
	case consistencyLinearizable, consistencySerializable:
	default:
		return fmt.Errorf("--consistency %q: expected linearizable or serializable", o.consistency)
	}
	if o.timeout <= 0 {
		return fmt.Errorf("--timeout %s: must be positive", o.timeout)
	}
	return nil
}

// resolveEndpoints applies the flag > environment > default order.
func (o *ctlOptions) resolveEndpoints(cmd *cobra.Command) ([]string, error) {
	raw, from := o.endpoints, "--endpoints"
	if !cmd.Flags().Changed("endpoints") {
		raw, from = []string{"127.0.0.1:3002"}, "default"
		for _, kv := range o.app.environ {
			if v, ok := strings.CutPrefix(kv, envCtlEndpoints+"="); ok {
				raw, from = strings.Split(v, ","), envCtlEndpoints
			}
		}
	}
	out := make([]string, 0, len(raw))
	for i, e := range raw {
		e = strings.TrimSpace(e)
		if e == "" {
			return nil, fmt.Errorf("%s: endpoint %d is empty, expected host:port", from, i+1)
		}
		out = append(out, e)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no endpoint given, expected host:port[,host:port...]", from)
	}
	return out, nil
}

func (o *ctlOptions) tlsConfig() (*tls.Config, error) {
	if !o.tls && o.tlsCA == "" && o.tlsCert == "" && o.tlsKey == "" && o.tlsServerName == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: o.tlsServerName}
	if o.tlsCA != "" {
		pem, err := os.ReadFile(o.tlsCA)
		if err != nil {
			return nil, fmt.Errorf("--tls-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--tls-ca %s: no PEM certificate found", o.tlsCA)
		}
		cfg.RootCAs = pool
	}
	if (o.tlsCert == "") != (o.tlsKey == "") {
		return nil, errors.New("--tls-cert and --tls-key go together: give both or neither")
	}
	if o.tlsCert != "" {
		pair, err := tls.LoadX509KeyPair(o.tlsCert, o.tlsKey)
		if err != nil {
			return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// withClient connects to the cluster and runs fn under the command's
// deadline. Flags are checked before connecting.
func (o *ctlOptions) withClient(cmd *cobra.Command, fn func(ctx context.Context, c *client.Client) error) (err error) {
	if err := o.validate(); err != nil {
		return err
	}
	endpoints, err := o.resolveEndpoints(cmd)
	if err != nil {
		return err
	}
	tlsCfg, err := o.tlsConfig()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), o.timeout)
	defer cancel()
	// The client logs only what an operator should see; debug chatter about
	// leader discovery would drown the command's output.
	logger := warnLogger(o.app.stderr)
	c, err := client.New(ctx, client.Config{
		Endpoints:      endpoints,
		DialTimeout:    min(o.timeout, 5*time.Second),
		RequestTimeout: o.timeout,
		AttemptTimeout: ctlAttemptTimeout(o.timeout),
		TLS:            tlsCfg,
		ClientID:       "metasrv-ctl",
	}, logger)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("%w (--timeout %s)", describe(err), o.timeout)
		}
		return describe(err)
	}
	defer func() {
		if cerr := c.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	if err := fn(ctx, c); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("%w (--timeout %s)", err, o.timeout)
		}
		return err
	}
	return nil
}

// reader returns the backend reads go through, per --consistency.
func (o *ctlOptions) reader(c *client.Client) kv.Backend {
	if o.consistency == consistencySerializable {
		return c.Serializable()
	}
	return c
}

// arg decodes a KEY/END/EXPECT/VALUE argument (hex with --hex).
func (o *ctlOptions) arg(name, s string) ([]byte, error) {
	if !o.hex {
		return []byte(s), nil
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%s %q is not valid hex (--hex is set): %w", name, s, err)
	}
	return b, nil
}

// key decodes a KEY argument, which must not be empty.
func (o *ctlOptions) key(s string) ([]byte, error) {
	k, err := o.arg("KEY", s)
	if err == nil && len(k) == 0 {
		err = errors.New("KEY is empty; keys are non-empty byte strings")
	}
	return k, err
}

// rpcFailure is a failed call as ctl prints it: the gRPC code and the
// server's message, without the client's own "metasrv:" prefix (run adds
// one already). It keeps the original error for errors.Is.
type rpcFailure struct {
	msg string
	err error
}

func (e *rpcFailure) Error() string { return e.msg }
func (e *rpcFailure) Unwrap() error { return e.err }

func describe(err error) error {
	// Only an error that is itself a status is reworded: status.FromError
	// would also reach into wrapped ones and label the whole chain with the
	// innermost code.
	if se, ok := err.(interface{ GRPCStatus() *status.Status }); ok {
		st := se.GRPCStatus()
		return &rpcFailure{msg: fmt.Sprintf("%s: %s", st.Code(), st.Message()), err: err}
	}
	if msg, ok := strings.CutPrefix(err.Error(), "metasrv: "); ok {
		return &rpcFailure{msg: msg, err: err}
	}
	return err
}

// failed prefixes an error with what was being done.
func failed(what string, err error) error {
	return fmt.Errorf("%s: %w", what, describe(err))
}

// ctlAttemptTimeout lets one attempt take half the command's deadline: an
// operator's large delete or range may legitimately take longer than the
// client's default attempt (1s, tuned for quick failover), and a command is
// run once, so waiting longer on a frozen node costs only that command. Below
// 2s the client's own default applies.
func ctlAttemptTimeout(timeout time.Duration) time.Duration {
	if timeout < 2*time.Second {
		return 0
	}
	return timeout / 2
}
