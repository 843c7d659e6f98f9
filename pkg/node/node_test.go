package node

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/client"
	"github.com/pgmetasrv/metasrv/pkg/config"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/metasrv"
)

func memoryOptions() config.Options {
	o := config.Default()
	o.GRPC.BindAddr, o.HTTP.Addr = "127.0.0.1:0", "127.0.0.1:0"
	return o
}

func newNode(t *testing.T, o config.Options) *Node {
	t.Helper()
	n, err := New(context.Background(), Config{Options: o, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, n.Stop(context.Background())) })
	return n
}

// New binds: the addresses are known (port 0 resolved) and held before
// Start, and Stop without Start releases them; Stop is safe twice.
func TestNewBindsAddresses(t *testing.T) {
	t.Parallel()
	n := newNode(t, memoryOptions())
	grpcAddr, httpAddr := n.GRPCAddr().(*net.TCPAddr), n.HTTPAddr().(*net.TCPAddr)
	require.NotZero(t, grpcAddr.Port)
	require.NotZero(t, httpAddr.Port)
	require.Equal(t, grpcAddr.String(), n.Advertised())
	for _, a := range []string{grpcAddr.String(), httpAddr.String()} {
		_, err := net.Listen("tcp", a)
		require.Error(t, err, "%s is held by New", a)
	}
	select {
	case <-n.ReadyNotify():
		t.Fatal("ready before Start")
	default:
	}

	require.NoError(t, n.Stop(context.Background()))
	require.NoError(t, n.Stop(context.Background()))
	l, err := net.Listen("tcp", grpcAddr.String())
	require.NoError(t, err, "Stop released the reservation")
	require.NoError(t, l.Close())
	require.ErrorContains(t, n.Start(context.Background()), "stopped")
}

func TestAdvertisedAddress(t *testing.T) {
	t.Parallel()
	o := memoryOptions()
	o.GRPC.ServerAddr = "metasrv-0.example:3002"
	require.Equal(t, "metasrv-0.example:3002", newNode(t, o).Advertised())
	require.Equal(t, "10.0.0.1:3002", advertise("", &net.TCPAddr{IP: net.ParseIP("10.0.0.1"), Port: 3002}))
	require.NotContains(t, advertise("", &net.TCPAddr{IP: net.IPv4zero, Port: 3002}), "0.0.0.0")
}

// An address in use fails New at once, naming it, and leaves nothing open
// (goleak checks the goroutines at the end of the run).
func TestNewFailsOnAddressInUse(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = busy.Close() })
	for _, set := range []func(*config.Options){
		func(o *config.Options) { o.GRPC.BindAddr = busy.Addr().String() },
		func(o *config.Options) { o.HTTP.Addr = busy.Addr().String() },
	} {
		o := memoryOptions()
		set(&o)
		n, err := New(context.Background(), Config{Options: o})
		require.Nil(t, n)
		require.ErrorContains(t, err, busy.Addr().String())
	}
}

// Start serves on the addresses New bound: ReadyNotify closes, the node
// leads, and the KV stack applies the prefix and limits.
func TestStartServesTheStore(t *testing.T) {
	t.Parallel()
	o := memoryOptions()
	o.StoreKeyPrefix = "cluster-a/"
	o.Procedure.MaxMetadataValueSize = 32 // fits the default schema value, {"ttl":null,"extra_options":{}}
	n := newNode(t, o)
	ctx := context.Background()
	require.NoError(t, n.Start(ctx))
	<-n.ReadyNotify()
	require.ErrorContains(t, n.Start(ctx), "already started")
	waitState(t, n, metasrv.LeaderReady)

	c, err := client.New(ctx, client.Config{Endpoints: []string{n.GRPCAddr().String()}}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	_, err = c.Put(ctx, kv.PutRequest{Key: []byte("k"), Value: []byte("v")})
	require.NoError(t, err)
	_, err = c.Put(ctx, kv.PutRequest{Key: []byte("big"), Value: []byte(strings.Repeat("x", 33))})
	require.ErrorContains(t, err, "max_metadata_value_size")
	leader, err := c.Leader(ctx)
	require.NoError(t, err)
	require.Equal(t, n.Advertised(), leader.Addr)

	base := "http://" + n.HTTPAddr().String()
	for path, want := range map[string]int{"/admin/ready": http.StatusOK, "/debug/pprof/cmdline": http.StatusOK, "/metrics": http.StatusOK} {
		code, body, err := httpGet(t, base+path)
		require.NoError(t, err)
		require.Equal(t, want, code, "%s: %s", path, body)
	}

	require.NoError(t, n.Stop(ctx))
	require.NoError(t, n.Stop(ctx), "Stop is safe twice")
	_, _, err = httpGet(t, base+"/admin/health")
	require.Error(t, err, "Stop stopped the servers")
}
