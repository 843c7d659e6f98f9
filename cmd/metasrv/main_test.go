package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gotoml "github.com/pelletier/go-toml/v2"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// binary is the metasrv binary built once for all tests, with -ldflags
// setting the version variables.
var binary string

const (
	testVersion = "v0.0.0-test"
	testCommit  = "0123abcd"
)

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "metasrv-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "metasrv")
	// Stamped as `task build` stamps it, so TestVersion checks that the
	// Taskfile's -X flags reach the binary.
	ldflags, err := taskfileLDFlags(testVersion, testCommit)
	if err != nil {
		fmt.Fprintln(os.Stderr, "read Taskfile.yml LDFLAGS:", err)
		return 1
	}
	build := exec.Command("go", "build", "-ldflags", ldflags, "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build metasrv:", err)
		return 1
	}
	code := m.Run()
	// The tests start nodes in-process (gRPC and HTTP servers, pools,
	// electors): every goroutine of theirs must have ended with them.
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines outlived the tests:", err)
			code = 1
		}
	}
	return code
}

// result is a finished metasrv run.
type result struct {
	code           int
	stdout, stderr string
}

// runBinary runs metasrv to completion with only the given environment.
func runBinary(t *testing.T, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// requireFailure checks a run failed with one line on stderr containing want.
func requireFailure(t *testing.T, r result, want ...string) {
	t.Helper()
	require.NotEqual(t, 0, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
	line := strings.TrimSuffix(r.stderr, "\n")
	require.NotContains(t, line, "\n", "expected one line, got:\n%s", r.stderr)
	require.True(t, strings.HasPrefix(line, "metasrv: "), line)
	for _, w := range want {
		require.Contains(t, line, w)
	}
	require.NotContains(t, r.stderr, "Usage:")
}

// syncBuffer is a bytes.Buffer safe to read while a process writes to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

func writeConfig(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "metasrv.toml")
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

// effective runs `metasrv config` and parses its TOML output.
func effective(t *testing.T, env []string, args ...string) map[string]any {
	t.Helper()
	r := runBinary(t, env, append([]string{"config"}, args...)...)
	require.Equal(t, 0, r.code, r.stderr)
	var out map[string]any
	require.NoError(t, gotoml.Unmarshal([]byte(r.stdout), &out), r.stdout)
	return out
}

func httpAddrOf(cfg map[string]any) any {
	return cfg["http"].(map[string]any)["addr"]
}

func TestStartServesUntilSIGTERM(t *testing.T) {
	t.Parallel()
	grpcAddr, httpAddr := freeAddr(t), freeAddr(t)
	cmd := exec.Command(binary, "start", "--backend", "memory_store",
		"--grpc-bind-addr", grpcAddr, "--http-addr", httpAddr, "--log-format", "json")
	var stderr syncBuffer
	cmd.Stderr = &stderr
	cmd.Env = []string{}
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	done := false
	t.Cleanup(func() {
		if !done {
			_ = cmd.Process.Kill()
			<-exited
		}
	})

	// Poll /admin/health until it answers, or fail at the deadline.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 2 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := client.Get("http://" + httpAddr + "/admin/health")
		if err == nil {
			body := new(bytes.Buffer)
			_, _ = body.ReadFrom(resp.Body)
			resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.Equal(t, "OK", body.String())
			break
		}
		select {
		case err := <-exited:
			done = true
			t.Fatalf("metasrv exited early: %v\n%s", err, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		require.True(t, time.Now().Before(deadline), "no health answer by the deadline:\n%s", stderr.String())
	}

	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	for _, svc := range []string{"", "metasrv.v1.Leader"} {
		resp, err := healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{Service: svc})
		require.NoError(t, err)
		require.Equal(t, healthpb.HealthCheckResponse_SERVING, resp.GetStatus(), "service %q", svc)
	}

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-exited:
		done = true
		require.NoError(t, err, stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("metasrv did not exit after SIGTERM:\n%s", stderr.String())
	}
	require.Contains(t, stderr.String(), "run exactly one instance")
	require.Contains(t, stderr.String(), `"msg":"stopped"`)
}

func TestConfigFromEnv(t *testing.T) {
	t.Parallel()
	cfg := effective(t, []string{"METASRV_HTTP__ADDR=127.0.0.1:4555"})
	require.Equal(t, "127.0.0.1:4555", httpAddrOf(cfg))
}

func TestConfigFlagBeatsEnv(t *testing.T) {
	t.Parallel()
	cfg := effective(t, []string{"METASRV_HTTP__ADDR=127.0.0.1:4555"}, "--http-addr", "127.0.0.1:4666")
	require.Equal(t, "127.0.0.1:4666", httpAddrOf(cfg))
}

func TestConfigEnvBeatsFile(t *testing.T) {
	t.Parallel()
	path := writeConfig(t, "meta_table_name = \"from_file\"\n[http]\naddr = \"127.0.0.1:4777\"\n")
	cfg := effective(t, []string{"METASRV_HTTP__ADDR=127.0.0.1:4555"}, "--config", path)
	require.Equal(t, "127.0.0.1:4555", httpAddrOf(cfg))
	require.Equal(t, "from_file", cfg["meta_table_name"])
}

func TestConfigMasksPassword(t *testing.T) {
	t.Parallel()
	r := runBinary(t, nil, "config", "--store-addrs", "postgres://u:secret@h/db")
	require.Equal(t, 0, r.code, r.stderr)
	require.NotContains(t, r.stdout+r.stderr, "secret")
	require.Contains(t, r.stdout, "postgres://u:*****@h:5432/db")

	r = runBinary(t, []string{"METASRV_STORE_ADDRS=host=h password=secret dbname=d"}, "config")
	require.Equal(t, 0, r.code, r.stderr)
	require.NotContains(t, r.stdout+r.stderr, "secret")
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	misspelt := writeConfig(t, "[grpc]\nbind_adr = \"127.0.0.1:3002\"\n")
	badDuration := writeConfig(t, "[procedure]\nretry_delay = \"5 parsecs\"\n")
	unsupported := writeConfig(t, "enable_telemetry = true\n")
	tests := []struct {
		name string
		env  []string
		args []string
		want []string
	}{
		{"misspelt key", nil, []string{"start", "--config", misspelt}, []string{`unknown key "grpc.bind_adr"`, misspelt}},
		{"misspelt env", []string{"METASRV_HTTP__ADR=x"}, []string{"start"}, []string{`unknown key "http.adr"`, "METASRV_HTTP__ADR"}},
		{"unsupported key", nil, []string{"config", "--config", unsupported}, []string{"enable_telemetry is not supported by this metasrv"}},
		{"malformed duration", nil, []string{"start", "--config", badDuration}, []string{"procedure.retry_delay", "invalid duration"}},
		{"unknown backend", nil, []string{"start", "--backend", "etcd_store"}, []string{"backend", `"etcd_store"`}},
		{"unknown flag", nil, []string{"start", "--no-such-flag"}, []string{"unknown flag: --no-such-flag"}},
		{"unknown command", nil, []string{"stat"}, []string{`unknown command "stat"`}},
		{"extra argument", nil, []string{"config", "extra"}, []string{"extra"}},
		{"missing config file", nil, []string{"start", "--config", "/nonexistent/metasrv.toml"}, []string{"/nonexistent/metasrv.toml"}},
		{"bad address", nil, []string{"start", "--grpc-bind-addr", "nohostport"}, []string{"grpc.bind_addr", "host:port"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			requireFailure(t, runBinary(t, tc.env, tc.args...), tc.want...)
		})
	}
}

func TestStartPortInUse(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	for _, flag := range []string{"--grpc-bind-addr", "--http-addr"} {
		args := []string{"start", "--grpc-bind-addr", freeAddr(t), "--http-addr", freeAddr(t), flag, busy.Addr().String()}
		r := runBinary(t, nil, args...)
		require.NotEqual(t, 0, r.code)
		// The log lines before the failure are fine; the last line is the error.
		lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
		last := lines[len(lines)-1]
		require.True(t, strings.HasPrefix(last, "metasrv: "), r.stderr)
		require.Contains(t, last, busy.Addr().String())
		require.Contains(t, last, "address already in use")
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	r := runBinary(t, nil, "version")
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "metasrv "+testVersion)
	require.Contains(t, r.stdout, "git commit: "+testCommit)
	require.Contains(t, r.stdout, "go: go1.")
}

func TestRootHelpExitsZero(t *testing.T) {
	t.Parallel()
	r := runBinary(t, nil)
	require.Equal(t, 0, r.code, r.stderr)
	for _, sub := range []string{"start", "config", "version"} {
		require.Contains(t, r.stdout, sub)
	}
}
