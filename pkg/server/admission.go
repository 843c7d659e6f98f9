package server

import (
	"container/list"
	"context"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Defaults of the request memory bounds (see Options and the README's
// "Request size and memory" section).
const (
	// DefaultMaxConcurrentReceives is how many unary requests may be read
	// off the wire and decoded at once.
	DefaultMaxConcurrentReceives = 8
	// DefaultInflightRequestFactor times MaxRecvMsgSize is the default
	// budget of decoded request bytes held by running handlers.
	DefaultInflightRequestFactor = 8
	// DefaultMaxConcurrentStreams caps the calls open at once on one
	// connection (the HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS); a client
	// opening more queues them on its side.
	DefaultMaxConcurrentStreams = 256
	// DefaultStreamWindowSize is the fixed HTTP/2 flow-control window of one
	// stream: what a client may send of a request the server has not
	// started reading yet. A fixed window turns off gRPC's BDP estimation,
	// which could grow it to 16MiB per stream.
	DefaultStreamWindowSize = 256 << 10
	// DefaultConnWindowSize is the HTTP/2 window of one connection.
	DefaultConnWindowSize = 4 << 20
	// grpcDefaultMaxRecvMsgSize is gRPC's own default receive cap.
	grpcDefaultMaxRecvMsgSize = 4 << 20
)

// admission bounds the memory that unary requests hold. It wraps the
// handlers of the unary methods registered through the Server's registrar,
// because a generated handler's first act, before any interceptor, is to read
// and decode its request through the function gRPC hands it; wrapping that
// function gates the read itself:
//
//   - the read waits for one of maxReceiving slots; the slot is held while
//     the message is received and decoded (wire bytes plus the decoded copy:
//     at most 2 x MaxRecvMsgSize each);
//   - once decoded, the call waits until its size (proto.Size, the message's
//     uncompressed wire length) fits in the in-flight byte budget, then gives
//     the slot back and holds those bytes until its handler returns.
//
// Calls waiting for a slot hold at most one stream window of unread data.
// A wait ends with the call's context (its deadline, or the client going
// away); the call then fails with the context's status (CANCELED or
// DEADLINE_EXCEEDED), before any interceptor. Streaming methods and the
// health service are not gated: they are long-lived or tiny.
//
// An earlier version was a stats.Handler; with one installed, gRPC copies
// every call's metadata and builds seven events per call, which cost 6-25%
// of the server's CPU per small call (docs/benchmarks.md).
type admission struct {
	receiving chan struct{}
	budget    *byteSemaphore
}

func newAdmission(maxReceiving int, budget int64) *admission {
	return &admission{receiving: make(chan struct{}, maxReceiving), budget: newByteSemaphore(budget)}
}

// wrap returns h gated by the admission.
func (a *admission) wrap(h grpc.MethodHandler) grpc.MethodHandler {
	return func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
		var held int64
		defer func() {
			if held > 0 {
				a.budget.release(held)
			}
		}()
		gated := func(m any) error {
			n, err := a.receive(ctx, m, dec)
			held = n
			return err
		}
		return h(srv, ctx, gated, interceptor)
	}
}

// receive reads and decodes one request into m under a receiving slot, then
// waits for its bytes in the budget; it returns the bytes it holds.
func (a *admission) receive(ctx context.Context, m any, dec func(any) error) (int64, error) {
	select {
	case a.receiving <- struct{}{}:
	case <-ctx.Done():
		return 0, status.FromContextError(ctx.Err()).Err()
	}
	defer func() { <-a.receiving }()
	if err := dec(m); err != nil {
		return 0, err
	}
	pm, ok := m.(proto.Message)
	if !ok {
		return 0, nil
	}
	n := min(int64(proto.Size(pm)), a.budget.size)
	if n == 0 {
		return 0, nil
	}
	if err := a.budget.acquire(ctx, n); err != nil {
		return 0, status.FromContextError(err).Err()
	}
	return n, nil
}

// gatedRegistrar registers services on srv with their unary methods gated
// by adm.
type gatedRegistrar struct {
	srv *grpc.Server
	adm *admission
}

var _ grpc.ServiceRegistrar = gatedRegistrar{}

func (r gatedRegistrar) RegisterService(desc *grpc.ServiceDesc, impl any) {
	gated := *desc
	gated.Methods = make([]grpc.MethodDesc, len(desc.Methods))
	for i, m := range desc.Methods {
		m.Handler = r.adm.wrap(m.Handler)
		gated.Methods[i] = m
	}
	r.srv.RegisterService(&gated, impl)
}

// byteSemaphore is a FIFO weighted semaphore of size bytes.
type byteSemaphore struct {
	size    int64
	mu      sync.Mutex
	cur     int64
	waiters list.List // of *byteWaiter
}

type byteWaiter struct {
	n     int64
	ready chan struct{}
}

func newByteSemaphore(size int64) *byteSemaphore { return &byteSemaphore{size: size} }

// acquire waits for n bytes (n <= size) or for ctx to end.
func (s *byteSemaphore) acquire(ctx context.Context, n int64) error {
	s.mu.Lock()
	if s.waiters.Len() == 0 && s.cur+n <= s.size {
		s.cur += n
		s.mu.Unlock()
		return nil
	}
	w := &byteWaiter{n: n, ready: make(chan struct{})}
	elem := s.waiters.PushBack(w)
	s.mu.Unlock()
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		select {
		case <-w.ready:
			// Granted meanwhile: keep it, the caller releases it.
			s.mu.Unlock()
			return nil
		default:
		}
		isFront := s.waiters.Front() == elem
		s.waiters.Remove(elem)
		if isFront {
			// Those behind may fit now.
			s.grantLocked()
		}
		s.mu.Unlock()
		return ctx.Err()
	}
}

func (s *byteSemaphore) release(n int64) {
	s.mu.Lock()
	s.cur -= n
	s.grantLocked()
	s.mu.Unlock()
}

func (s *byteSemaphore) grantLocked() {
	for e := s.waiters.Front(); e != nil; e = s.waiters.Front() {
		w := e.Value.(*byteWaiter)
		if s.cur+w.n > s.size {
			return
		}
		s.cur += w.n
		s.waiters.Remove(e)
		close(w.ready)
	}
}
