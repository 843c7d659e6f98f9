package greptime

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/pgmetasrv/metasrv/internal/pgtest"
	"github.com/pgmetasrv/metasrv/internal/proccluster"
	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/grpczstd"
	"github.com/pgmetasrv/metasrv/pkg/kv"
)

const (
	// heartbeatInterval is the nodes' heartbeat_interval: datanodes and
	// flownodes beat every 500ms, the frontend every 3s, all retry after
	// 500ms.
	heartbeatInterval = 500 * time.Millisecond
	// lease is election.lease, short as in test/chaos, so a crashed
	// leader's successor takes over quickly.
	lease = time.Second
	// startTimeout bounds the cluster's start (a node may wait on another's
	// migration lock) and the first handshakes; it is a liveness bound for
	// a loaded machine, not a speed target.
	startTimeout = 60 * time.Second
	// failoverTimeout bounds the wait for every node's handshake with the
	// new leader after the old one was killed.
	failoverTimeout = 30 * time.Second
)

// buildMetasrv compiles cmd/metasrv into a directory of the test.
func buildMetasrv(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "metasrv")
	goTool := "go"
	if p, err := exec.LookPath("go"); err == nil {
		goTool = p
	}
	out, err := exec.Command(goTool, "build", "-o", bin, "github.com/pgmetasrv/metasrv/cmd/metasrv").CombinedOutput()
	require.NoError(t, err, "build metasrv: %s", out)
	return bin
}

// startCluster runs three metasrv processes on a database of their own and
// waits until each serves. Their logs are printed if the test fails.
func startCluster(t *testing.T) *proccluster.Cluster {
	t.Helper()
	bin := buildMetasrv(t)
	dsn := pgtest.NewDatabase(t)
	logDir := t.TempDir()
	c, err := proccluster.New(t.Context(), proccluster.Config{Nodes: 3, DSN: dsn, Node: proccluster.NodeConfig{
		Binary: bin,
		Schema: "greptime_test",
		LogDir: logDir,
		Args:   []string{"--log-level", "info"},
		Env: []string{
			"METASRV_HEARTBEAT_INTERVAL=" + heartbeatInterval.String(),
			"METASRV_ELECTION__LEASE=" + lease.String(),
			"METASRV_ELECTION__CAMPAIGN_INTERVAL=" + (lease / 10).String(),
			"METASRV_ELECTION__CANDIDATE_LEASE=" + (3 * lease).String(),
		},
	}})
	require.NoError(t, err)
	t.Cleanup(func() {
		c.Close()
		if t.Failed() {
			for _, n := range c.Nodes {
				t.Logf("%s log tail:\n%s", n, n.LogTail(6000))
			}
		}
	})
	for _, n := range c.Nodes {
		require.NoError(t, n.Start())
	}
	for _, n := range c.Nodes {
		require.NoError(t, n.WaitServing(t.Context(), startTimeout))
	}
	return c
}

// clusterRange reads the node-info keys from addr's Cluster service, as
// GreptimeDB's cluster client does (no header, zstd-compressed).
func clusterRange(t *testing.T, addr string) *metapb.RangeResponse {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.UseCompressor(grpczstd.Name)))
	require.NoError(t, err)
	defer cc.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	prefix := []byte(greptimekey.NodeInfoPrefix)
	resp, err := metapb.NewClusterClient(cc).Range(ctx, &metapb.RangeRequest{Key: prefix, RangeEnd: kv.PrefixEnd(prefix)})
	require.NoError(t, err, "Cluster/Range on %s", addr)
	return resp
}
