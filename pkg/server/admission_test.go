package server

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	metasrvv1 "github.com/pgmetasrv/metasrv/pkg/api/metasrv/v1"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/kv/memkv"
	"github.com/pgmetasrv/metasrv/pkg/metasrv"
	"github.com/pgmetasrv/metasrv/pkg/server/apierr"
	"github.com/pgmetasrv/metasrv/pkg/server/metasrvapi"
)

const waitFor = 10 * time.Second

// storeRouter serves the Store API from one backend, as a leader.
type storeRouter struct{ backend kv.Backend }

func (r storeRouter) LeaderBackend(context.Context) (kv.Backend, error) { return r.backend, nil }
func (r storeRouter) SerializableBackend() kv.Backend                   { return r.backend }
func (r storeRouter) HeaderInfo() metasrv.HeaderInfo                    { return metasrv.HeaderInfo{NodeAddr: "self:1"} }

// gatedPuts holds every Put in the backend until released.
type gatedPuts struct {
	kv.Backend
	entered chan struct{}
	release chan struct{}
}

func (b gatedPuts) Put(ctx context.Context, req kv.PutRequest) (kv.PutResponse, error) {
	b.entered <- struct{}{}
	select {
	case <-b.release:
	case <-ctx.Done():
		return kv.PutResponse{}, ctx.Err()
	}
	return b.Backend.Put(ctx, req)
}

func storeServer(t *testing.T, opts Options, backend kv.Backend) (*Server, metasrvv1.StoreClient) {
	t.Helper()
	// The Store service returns plain errors: apierr maps them.
	opts.GRPCOptions = append(opts.GRPCOptions, grpc.ChainUnaryInterceptor(apierr.UnaryServerInterceptor(slog.New(slog.DiscardHandler))))
	opts.Register = func(g grpc.ServiceRegistrar) {
		metasrvapi.NewStore(storeRouter{backend: backend}).Register(g)
	}
	s := startServer(t, opts)
	return s, metasrvv1.NewStoreClient(dial(t, s))
}

func TestRequestOverMaxRecvIsRefusedWhileRead(t *testing.T) {
	t.Parallel()
	store := memkv.New()
	_, c := storeServer(t, Options{MaxRecvMsgSize: 64 << 10}, store)
	ctx := t.Context()

	_, err := c.Put(ctx, &metasrvv1.PutRequest{Key: []byte("big"), Value: make([]byte, 100<<10)})
	require.Equal(t, codes.ResourceExhausted, status.Code(err), "%v", err)
	msg := status.Convert(err).Message()
	require.Contains(t, msg, "larger than max")
	require.Contains(t, msg, "65536", "the message names the limit")
	got, err := kv.Get(ctx, store, []byte("big"))
	require.NoError(t, err)
	require.Nil(t, got, "nothing applied")

	_, err = c.Put(ctx, &metasrvv1.PutRequest{Key: []byte("small"), Value: make([]byte, 32<<10)})
	require.NoError(t, err, "a request under the cap passes")
}

func TestInflightRequestBytesAreBounded(t *testing.T) {
	t.Parallel()
	backend := gatedPuts{Backend: memkv.New(), entered: make(chan struct{}, 2), release: make(chan struct{})}
	// Room for one 100KiB request in the handlers, not two.
	s, c := storeServer(t, Options{MaxRecvMsgSize: 128 << 10, MaxInflightRequestBytes: 150 << 10}, backend)
	ctx := t.Context()

	errs := make(chan error, 2)
	put := func(key string) {
		_, err := c.Put(ctx, &metasrvv1.PutRequest{Key: []byte(key), Value: make([]byte, 100<<10)})
		errs <- err
	}
	go put("a")
	<-backend.entered // a holds its bytes inside the handler
	go put("b")
	require.Eventually(t, func() bool {
		_, waiting := s.admission.budget.inUse()
		return waiting == 1
	}, waitFor, time.Millisecond, "b waits for the budget before its handler runs")
	select {
	case <-backend.entered:
		t.Fatal("b reached the backend while a held the budget")
	default:
	}
	held, _ := s.admission.budget.inUse()
	require.LessOrEqual(t, held, int64(150<<10))

	backend.release <- struct{}{} // a finishes and gives its bytes back
	require.NoError(t, <-errs)
	<-backend.entered
	backend.release <- struct{}{}
	require.NoError(t, <-errs)
	held, waiting := s.admission.budget.inUse()
	require.Zero(t, held)
	require.Zero(t, waiting)
}

func TestConcurrentReceivesAreBounded(t *testing.T) {
	t.Parallel()
	a := newAdmission(1, 1<<20)
	// What generated code does: decode first, then run the method, which
	// here reports the bytes the call holds.
	handler := a.wrap(func(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
		m := &metasrvv1.PutRequest{}
		if err := dec(m); err != nil {
			return nil, err
		}
		held, _ := a.budget.inUse()
		return held, nil
	})
	reading, release := make(chan struct{}), make(chan struct{})
	type answer struct {
		held any
		err  error
	}
	first := make(chan answer, 1)
	go func() {
		held, err := handler(nil, t.Context(), func(m any) error {
			close(reading)
			<-release
			m.(*metasrvv1.PutRequest).Key = []byte("key")
			return nil
		}, nil)
		first <- answer{held, err} // asserted on the test's goroutine
	}()
	<-reading // the first call holds the only slot while it reads

	// A second call cannot start reading: it waits for the slot until its
	// context ends, and fails as a canceled call fails.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := handler(nil, ctx, func(any) error {
		t.Error("a second request was read while the only receive slot was taken")
		return nil
	}, nil)
	require.Equal(t, codes.Canceled, status.Code(err), "%v", err)

	close(release)
	got := <-first
	require.NoError(t, got.err)
	require.EqualValues(t, proto.Size(&metasrvv1.PutRequest{Key: []byte("key")}), got.held, "the decoded bytes are held while the method runs")
	held, waiting := a.budget.inUse()
	require.Zero(t, held, "and given back when it returns")
	require.Zero(t, waiting)
	require.Empty(t, a.receiving)

	// The slot is free again.
	_, err = handler(nil, t.Context(), func(any) error { return nil }, nil)
	require.NoError(t, err)

	// A decode error is the call's error, and leaves nothing held.
	_, err = handler(nil, t.Context(), func(any) error { return status.Error(codes.ResourceExhausted, "too big") }, nil)
	require.Equal(t, codes.ResourceExhausted, status.Code(err))
	require.Empty(t, a.receiving)
	held, _ = a.budget.inUse()
	require.Zero(t, held)
}

// TestRegisteredMethodsAreGated checks the gate end to end: with the only
// receive slot taken, a Store call waits (until its deadline) before its
// request is read, while the health service, not gated, still answers.
func TestRegisteredMethodsAreGated(t *testing.T) {
	t.Parallel()
	store := memkv.New()
	s, c := storeServer(t, Options{MaxConcurrentReceives: 1}, store)
	s.admission.receiving <- struct{}{}

	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, err := c.Put(ctx, &metasrvv1.PutRequest{Key: []byte("k"), Value: []byte("v")})
	require.Equal(t, codes.DeadlineExceeded, status.Code(err), "%v", err)
	got, err := kv.Get(t.Context(), store, []byte("k"))
	require.NoError(t, err)
	require.Nil(t, got, "never read, never applied")
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, healthStatus(t, dial(t, s), ""))

	<-s.admission.receiving
	_, err = c.Put(t.Context(), &metasrvv1.PutRequest{Key: []byte("k"), Value: []byte("v")})
	require.NoError(t, err)
}

func TestByteSemaphoreWaitEndsWithContext(t *testing.T) {
	t.Parallel()
	s := newByteSemaphore(10)
	require.NoError(t, s.acquire(t.Context(), 8))
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.acquire(ctx, 5) }()
	require.Eventually(t, func() bool { _, w := s.inUse(); return w == 1 }, waitFor, time.Millisecond)
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
	// The canceled waiter no longer blocks a smaller request behind it.
	require.NoError(t, s.acquire(t.Context(), 2))
	s.release(10)
	held, waiting := s.inUse()
	require.Zero(t, held)
	require.Zero(t, waiting)
}

func TestLeaderHealthIsAnsweredLive(t *testing.T) {
	t.Parallel()
	var trusted atomic.Bool
	trusted.Store(true)
	s := startServer(t, Options{LeaderCheck: trusted.Load})
	conn := dial(t, s)
	s.SetLeader(true)
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, healthStatus(t, conn, LeaderService))

	watch, err := healthpb.NewHealthClient(conn).Watch(t.Context(), &healthpb.HealthCheckRequest{Service: LeaderService})
	require.NoError(t, err)
	got, err := watch.Recv()
	require.NoError(t, err)
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, got.GetStatus())

	// The trust window lapses (a frozen leader resumed) before the node
	// records any step-down: answers given now say NOT_SERVING.
	trusted.Store(false)
	require.Equal(t, healthpb.HealthCheckResponse_NOT_SERVING, healthStatus(t, conn, LeaderService))
	got, err = watch.Recv()
	require.NoError(t, err)
	require.Equal(t, healthpb.HealthCheckResponse_NOT_SERVING, got.GetStatus())
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, healthStatus(t, conn, ""), "the process itself is still up")

	// Trust alone is not enough: the recorded state must say leader too.
	trusted.Store(true)
	got, err = watch.Recv()
	require.NoError(t, err)
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, got.GetStatus())
	s.SetLeader(false)
	got, err = watch.Recv()
	require.NoError(t, err)
	require.Equal(t, healthpb.HealthCheckResponse_NOT_SERVING, got.GetStatus())
	require.Equal(t, healthpb.HealthCheckResponse_NOT_SERVING, healthStatus(t, conn, LeaderService))
}

// inUse reports the bytes held and the calls waiting (for tests).
func (s *byteSemaphore) inUse() (held int64, waiting int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur, s.waiters.Len()
}
