package metasrvapi_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	metasrvv1 "github.com/pgmetasrv/metasrv/pkg/api/metasrv/v1"
)

// TestOversizedPutLoad is a manual load driver, not a regular test: it sends
// METASRV_LOAD_CONCURRENCY (default 200) concurrent Puts of
// METASRV_LOAD_VALUE_MIB (default 5) MiB values, METASRV_LOAD_ROUNDS (default
// 3) times, to a running metasrv at METASRV_LOAD_ADDR (loopback), and
// reports the status codes it got. Measure the server's peak RSS (VmHWM in
// /proc/PID/status) around it. Skipped unless METASRV_LOAD_ADDR is set.
//
//	METASRV_LOAD_ADDR=127.0.0.1:3002 go test ./pkg/server/metasrvapi -run TestOversizedPutLoad -v -count=1
func TestOversizedPutLoad(t *testing.T) {
	addr := os.Getenv("METASRV_LOAD_ADDR")
	if addr == "" {
		t.Skip("METASRV_LOAD_ADDR not set: manual load driver")
	}
	conc := envInt(t, "METASRV_LOAD_CONCURRENCY", 200)
	mib := envInt(t, "METASRV_LOAD_VALUE_MIB", 5)
	rounds := envInt(t, "METASRV_LOAD_ROUNDS", 3)
	// Several connections, as many clients would open.
	const conns = 8
	ccs := make([]*grpc.ClientConn, conns)
	for i := range ccs {
		cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		require.NoError(t, err)
		defer func() { _ = cc.Close() }()
		ccs[i] = cc
	}
	value := make([]byte, mib<<20)
	var mu sync.Mutex
	codesSeen := map[string]int{}
	firstMsg := map[string]string{}
	start := time.Now()
	for round := range rounds {
		var wg sync.WaitGroup
		for i := range conc {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				c := metasrvv1.NewStoreClient(ccs[i%conns])
				_, err := c.Put(ctx, &metasrvv1.PutRequest{Key: fmt.Appendf(nil, "/load/%d/%d", round, i), Value: value})
				st, _ := status.FromError(err)
				mu.Lock()
				defer mu.Unlock()
				codesSeen[st.Code().String()]++
				if _, ok := firstMsg[st.Code().String()]; !ok && st.Code() != codes.OK {
					firstMsg[st.Code().String()] = st.Message()
				}
			})
		}
		wg.Wait()
	}
	t.Logf("%d rounds x %d concurrent puts of %d MiB in %s: codes %v", rounds, conc, mib, time.Since(start).Round(time.Millisecond), codesSeen)
	for c, m := range firstMsg {
		t.Logf("%s: %s", c, m)
	}
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	require.NoError(t, err, name)
	return n
}
