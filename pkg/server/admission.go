package server

import (
	"container/list"
	"context"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc/stats"
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

// admission bounds the memory that unary requests hold, as a stats.Handler
// because that is the one hook gRPC calls on the call's goroutine before it
// reads the request message (an interceptor runs only after the message has
// been received and decoded):
//
//   - TagRPC waits for one of maxReceiving slots before the message is read;
//     the slot is held while it is received and decoded (wire bytes plus the
//     decoded copy: at most 2 x MaxRecvMsgSize each);
//   - once decoded (InPayload), the call waits until its size fits in the
//     in-flight byte budget, then gives the slot back and holds those bytes
//     until it ends (End).
//
// Calls waiting for a slot hold at most one stream window of unread data.
// A wait ends with the call's context (its deadline, or the client going
// away); the call then fails as gRPC fails a canceled call. Streaming
// methods and the health service are not gated: they are long-lived or tiny.
type admission struct {
	receiving chan struct{}
	budget    *byteSemaphore
	gated     atomic.Pointer[map[string]bool] // full method name -> gated
}

func newAdmission(maxReceiving int, budget int64) *admission {
	return &admission{receiving: make(chan struct{}, maxReceiving), budget: newByteSemaphore(budget)}
}

// gate sets the methods to gate; called once the services are registered,
// before serving.
func (a *admission) gate(methods map[string]bool) { a.gated.Store(&methods) }

type admissionKey struct{}

// ticket is one gated call's holdings. TagRPC, InPayload and End of a unary
// call all run on the call's goroutine, so its fields need no lock.
type ticket struct {
	receiving bool
	bytes     int64
}

func (a *admission) TagRPC(ctx context.Context, info *stats.RPCTagInfo) context.Context {
	gated := a.gated.Load()
	if gated == nil || !(*gated)[info.FullMethodName] {
		return ctx
	}
	t := &ticket{}
	select {
	case a.receiving <- struct{}{}:
		t.receiving = true
	case <-ctx.Done():
		// The read fails at once on the canceled stream.
	}
	return context.WithValue(ctx, admissionKey{}, t)
}

func (a *admission) HandleRPC(ctx context.Context, s stats.RPCStats) {
	t, _ := ctx.Value(admissionKey{}).(*ticket)
	if t == nil {
		return
	}
	switch s := s.(type) {
	case *stats.InPayload:
		if !t.receiving {
			return
		}
		n := min(int64(s.Length), a.budget.size)
		if a.budget.acquire(ctx, n) == nil {
			t.bytes = n
		}
		a.releaseReceiving(t)
	case *stats.End:
		a.releaseReceiving(t)
		if t.bytes > 0 {
			a.budget.release(t.bytes)
			t.bytes = 0
		}
	}
}

func (a *admission) releaseReceiving(t *ticket) {
	if t.receiving {
		t.receiving = false
		<-a.receiving
	}
}

func (a *admission) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (a *admission) HandleConn(context.Context, stats.ConnStats)                       {}

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
