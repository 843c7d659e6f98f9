package hbload

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	"github.com/pgmetasrv/metasrv/internal/greptimefake"
	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
)

// pool is one connection pool shared by up to Config.ConnsPer nodes, with
// the latency records of its nodes' streams.
type pool struct {
	conns *greptimefake.Conns
	// whole is the histogram its nodes record into themselves
	// (greptimefake.Config.Latency): every beat from the first on.
	whole greptimefake.Histogram
	// window is the measurement window's record, nil outside it.
	window atomic.Pointer[window]
	// answered counts the beats answered on the pool's streams (handshakes
	// and pushed messages excluded), for the progress lines.
	answered atomic.Uint64
}

// window is where the beats sent inside the measurement window are timed.
type window struct {
	start time.Time
	hist  greptimefake.Histogram
}

func newPool(dialOpts ...grpc.DialOption) *pool {
	p := &pool{}
	p.conns = greptimefake.NewConns(append([]grpc.DialOption{grpc.WithStreamInterceptor(p.intercept)}, dialOpts...)...)
	return p
}

// intercept times the heartbeat streams; other calls pass untouched.
func (p *pool) intercept(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	cs, err := streamer(ctx, desc, cc, method, opts...)
	if err != nil || method != metapb.Heartbeat_Heartbeat_FullMethodName {
		return cs, err
	}
	return &timedStream{ClientStream: cs, pool: p}, nil
}

// record files one answered beat sent at sent.
func (p *pool) record(sent time.Time, took time.Duration) {
	p.answered.Add(1)
	if w := p.window.Load(); w != nil && !sent.Before(w.start) {
		w.hist.Record(took)
	}
}

// pendingCap is how many unanswered sends a stream remembers, as the fake
// does; metasrv answers a stream's requests in order.
const pendingCap = 16

// timedStream is a heartbeat stream whose sends are paired with their
// answers: the first send is the handshake, every later one a beat (or a
// mailbox reply); a response carrying a mailbox message was pushed and
// answers nothing.
type timedStream struct {
	grpc.ClientStream
	pool *pool

	mu         sync.Mutex
	sent       [pendingCap]time.Time
	head, n    int
	handshaken bool // the handshake's answer has been read
}

func (s *timedStream) SendMsg(m any) error {
	now := time.Now()
	s.mu.Lock()
	if s.n == pendingCap { // forget the oldest
		s.head = (s.head + 1) % pendingCap
		s.n--
	}
	s.sent[(s.head+s.n)%pendingCap] = now
	s.n++
	s.mu.Unlock()
	return s.ClientStream.SendMsg(m)
}

func (s *timedStream) RecvMsg(m any) error {
	if err := s.ClientStream.RecvMsg(m); err != nil {
		return err
	}
	now := time.Now()
	if r, ok := m.(*metapb.HeartbeatResponse); ok && r.GetMailboxMessage() != nil {
		return nil
	}
	s.mu.Lock()
	if s.n == 0 {
		s.mu.Unlock()
		return nil
	}
	sent := s.sent[s.head]
	s.head = (s.head + 1) % pendingCap
	s.n--
	handshake := !s.handshaken
	s.handshaken = true
	s.mu.Unlock()
	if !handshake {
		s.pool.record(sent, now.Sub(sent))
	}
	return nil
}
