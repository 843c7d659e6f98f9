package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/config"
)

// While PostgreSQL cannot be reached (nothing listens at store_addrs), New
// keeps retrying, and meanwhile liveness and /metrics answer 200 and
// readiness 503 with what to check; every retry's log line says it too.
func TestAdminAnswersWhileConnecting(t *testing.T) {
	t.Parallel()
	o := config.Default()
	o.Backend = config.BackendPostgres
	o.StoreAddrs = []string{"postgres://metasrv@" + freeAddr(t) + "/metasrv?sslmode=disable"}
	o.GRPC.BindAddr, o.HTTP.Addr = "127.0.0.1:0", freeAddr(t)

	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		n, err := New(ctx, Config{Options: o, Logger: slog.New(slog.NewTextHandler(logs, nil))})
		if n != nil {
			_ = n.Stop(context.Background())
		}
		done <- err
	}()

	base := "http://" + o.HTTP.Addr
	require.Eventually(t, func() bool {
		code, body, err := httpGet(t, base+"/admin/health")
		return err == nil && code == http.StatusOK && body == "OK"
	}, 10*time.Second, 5*time.Millisecond, "liveness answers while connecting")
	code, body, err := httpGet(t, base+"/metrics")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "go_goroutines")

	// The first retry's reason reaches readiness.
	require.Eventually(t, func() bool {
		code, body, err := httpGet(t, base+"/admin/ready")
		return err == nil && code == http.StatusServiceUnavailable && bytes.Contains([]byte(body), []byte("connection refused"))
	}, 10*time.Second, 5*time.Millisecond)
	_, body, err = httpGet(t, base+"/admin/ready")
	require.NoError(t, err)
	var ready map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &ready), body)
	require.Equal(t, false, ready["ready"])
	require.Contains(t, ready["reason"], "the host and port in store_addrs")
	require.Contains(t, logs.String(), "check=")

	cancel()
	require.True(t, errors.Is(<-done, context.Canceled))
	_, _, err = httpGet(t, base+"/admin/health")
	require.Error(t, err, "the early admin stops with the failed New")
}

func TestConnectAdvice(t *testing.T) {
	t.Parallel()
	what, check := connectAdvice(errors.New("failed to connect to `user=x database=y`: 127.0.0.1:5432 (localhost): tls error: server refused TLS connection"))
	require.Equal(t, "the server does not accept TLS", what)
	require.Contains(t, check, "backend_tls.mode")
}
