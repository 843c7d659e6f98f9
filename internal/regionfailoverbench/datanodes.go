package regionfailoverbench

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/pgmetasrv/metasrv/internal/greptimefake"
	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
)

// beats are the times a datanode sent its heartbeats (mailbox replies and
// the handshake left out), taken by a stream interceptor on its own
// connection: the fake itself keeps no such record.
type beats struct {
	mu    sync.Mutex
	times []time.Time
}

func (b *beats) record(at time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.times = append(b.times, at)
}

// since is the beats sent after t.
func (b *beats) since(t time.Time) []time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []time.Time
	for _, at := range b.times {
		if at.After(t) {
			out = append(out, at)
		}
	}
	return out
}

// firstSince is the first beat sent after t; false before any.
func (b *beats) firstSince(t time.Time) (time.Time, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, at := range b.times {
		if at.After(t) {
			return at, true
		}
	}
	return time.Time{}, false
}

// last is the last beat sent; false before any.
func (b *beats) last() (time.Time, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.times) == 0 {
		return time.Time{}, false
	}
	return b.times[len(b.times)-1], true
}

func (b *beats) interceptor() grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		s, err := streamer(ctx, desc, cc, method, opts...)
		if err != nil || method != metapb.Heartbeat_Heartbeat_FullMethodName {
			return s, err
		}
		return &beatStream{ClientStream: s, b: b}, nil
	}
}

type beatStream struct {
	grpc.ClientStream
	b *beats
}

// SendMsg takes the time once the request is handed to the transport.
func (s *beatStream) SendMsg(m any) error {
	if err := s.ClientStream.SendMsg(m); err != nil {
		return err
	}
	if req, ok := m.(*metapb.HeartbeatRequest); ok && req.GetPeer() != nil && req.GetMailboxMessage() == nil {
		s.b.record(time.Now())
	}
	return nil
}

// member is one fake datanode of the run, on a connection of its own (a
// datanode process has its own channel manager), its leases and
// instructions read by a goroutine of its own into the recorder.
type member struct {
	id    uint64
	node  *greptimefake.Node
	conns *greptimefake.Conns
	beats *beats
	quit  chan struct{}
	done  chan struct{}
	once  sync.Once
}

// startMember starts datanode id, bound to cfg.DatanodeHost on a free port.
func startMember(ctx context.Context, cfg Config, id uint64, rec *recorder) (*member, error) {
	m := &member{id: id, beats: &beats{}, quit: make(chan struct{}), done: make(chan struct{})}
	m.conns = greptimefake.NewConns(grpc.WithStreamInterceptor(m.beats.interceptor()))
	n, err := greptimefake.New(greptimefake.Config{
		Endpoints: cfg.Endpoints, Role: metapb.Role_DATANODE, ID: id, Addr: net.JoinHostPort(cfg.DatanodeHost, "0"),
		Conns: m.conns, RegionServer: true, Compressor: cfg.Compressor, Logger: cfg.Logger.With("datanode_id", id),
	})
	if err == nil {
		err = n.Start(ctx)
	}
	if err != nil {
		if n != nil {
			n.Stop()
		}
		m.conns.Close()
		return nil, fmt.Errorf("regionfailoverbench: start datanode %d: %w", id, err)
	}
	m.node = n
	go m.watch(rec)
	return m, nil
}

// watch hands every lease and executed instruction to rec as it arrives,
// until stop; what the node queued before it stopped is read too.
func (m *member) watch(rec *recorder) {
	defer close(m.done)
	for {
		select {
		case l := <-m.node.Leases():
			rec.lease(m.id, l)
		case ev := <-m.node.Instructions():
			rec.instruction(m.id, ev)
		case <-m.quit:
			for {
				select {
				case l := <-m.node.Leases():
					rec.lease(m.id, l)
				case ev := <-m.node.Instructions():
					rec.instruction(m.id, ev)
				default:
					return
				}
			}
		}
	}
}

// stop stops the datanode (its stream closes, as when its process dies),
// its reader and its connection; safe to call twice.
func (m *member) stop() {
	m.once.Do(func() {
		m.node.Stop()
		close(m.quit)
		<-m.done
		m.conns.Close()
	})
}

// stopAll stops members in parallel: each may wait up to a second for the
// metasrv to end its stream.
func stopAll(members []*member) {
	var wg sync.WaitGroup
	for _, m := range members {
		if m != nil {
			wg.Go(m.stop)
		}
	}
	wg.Wait()
}
