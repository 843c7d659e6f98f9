package heartbeat

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"

	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
	"github.com/pgmetasrv/metasrv/pkg/kv"
)

// ProtocolVersion is the greptime.v1.meta protocol version of every header.
const ProtocolVersion = 1

// NotLeaderCode and NotLeaderMessage are GreptimeDB's header error for a call
// that reached a node that does not lead (ErrorCode::NotLeader).
const (
	NotLeaderCode    = 2
	NotLeaderMessage = "Current server is not leader"
)

// PusherID names a session: the node's role and id. Its String is
// GreptimeDB's ("Datanode-42").
type PusherID struct {
	Role metapb.Role
	ID   uint64
}

func (p PusherID) String() string { return roleName(p.Role) + "-" + strconv.FormatUint(p.ID, 10) }

// roleName is GreptimeDB's name of a role (its Debug form).
func roleName(r metapb.Role) string {
	switch r {
	case metapb.Role_DATANODE:
		return "Datanode"
	case metapb.Role_FRONTEND:
		return "Frontend"
	case metapb.Role_FLOWNODE:
		return "Flownode"
	default:
		return r.String()
	}
}

// Session is one heartbeat stream's registration. Its methods are called by
// the stream's goroutine; Done may be waited on from any.
type Session struct {
	svc  *Service
	id   PusherID
	term *termState // nil: opened while this node ran no term

	endOnce sync.Once
	done    chan struct{}

	// out is the mailbox's outbox (nil while unregistered: nothing is
	// pushed to a session of no term).
	out chan *metapb.HeartbeatResponse
	// addr is the peer address the node last reported, named in the
	// mailbox's "to".
	addr atomic.Pointer[string]
}

// RequestError is a heartbeat the protocol refuses outright (no header, an
// unknown role): the gRPC layer answers INVALID_ARGUMENT with its message.
type RequestError struct{ Msg string }

func (e *RequestError) Error() string { return e.Msg }

// Open registers the stream whose first request carries header. On a node
// that runs no term the session is not registered: its first heartbeat is
// answered NotLeader.
func (s *Service) Open(header *metapb.RequestHeader) (*Session, error) {
	if header == nil {
		return nil, &RequestError{Msg: "Missing request header"}
	}
	if _, ok := metapb.Role_name[int32(header.GetRole())]; !ok {
		return nil, &RequestError{Msg: fmt.Sprintf("Invalid arguments: invalid role: %d", header.GetRole())}
	}
	id := PusherID{Role: header.GetRole(), ID: header.GetMemberId()}
	if id.Role == metapb.Role_FRONTEND {
		id.ID = s.frontendIDs.Add(1) - 1
	}
	sess := &Session{svc: s, id: id, done: make(chan struct{})}
	ts := s.current()
	if ts == nil {
		return sess, nil
	}
	ts.mu.Lock()
	if ts.ended {
		ts.mu.Unlock()
		return sess, nil
	}
	sess.term = ts
	sess.out = make(chan *metapb.HeartbeatResponse, outboxSize)
	old := ts.sessions[id]
	ts.sessions[id] = sess
	ts.mu.Unlock()
	if old != nil {
		old.end() // the node reconnected: its old stream is dead or about to be
	}
	s.log.Debug("heartbeat session registered", "pusher", id.String(), "term", ts.id)
	return sess, nil
}

// ID is the session's registration key.
func (ss *Session) ID() PusherID { return ss.id }

// Term is the term the session was registered in, 0 if none.
func (ss *Session) Term() int64 {
	if ss.term == nil {
		return 0
	}
	return ss.term.id
}

// Done is closed when the session's term ends or the same node registered
// again: the stream must then end (ABORTED, so the node reconnects).
func (ss *Session) Done() <-chan struct{} { return ss.done }

func (ss *Session) end() { ss.endOnce.Do(func() { close(ss.done) }) }

// Pushed is the session's outbox: the responses the mailbox pushed to the
// node, each with an OK header and a mailbox_message. The stream's goroutine
// sends them between its answers, after asking Deliverable.
func (ss *Session) Pushed() <-chan *metapb.HeartbeatResponse { return ss.out }

// Deliverable reports whether a pushed response may go out now: the
// session's term is the one this node trusts it leads and the session has
// not ended. A deposed leader thereby delivers nothing, not even what was
// queued before it noticed.
func (ss *Session) Deliverable() bool { return ss.leads() }

// address is the mailbox's name of the node: "Datanode-7@10.0.0.7:4001".
func (ss *Session) address() string {
	addr := ""
	if p := ss.addr.Load(); p != nil {
		addr = *p
	}
	return ss.id.String() + "@" + addr
}

// notePeer records the address the node reports, allocating only when it
// changes.
func (ss *Session) notePeer(peer *metapb.Peer) {
	if peer == nil {
		return
	}
	if p := ss.addr.Load(); p == nil || *p != peer.GetAddr() {
		addr := peer.GetAddr()
		ss.addr.Store(&addr)
	}
}

// Close unregisters the session if it is still the registered one.
func (ss *Session) Close() {
	ss.end()
	ts := ss.term
	if ts == nil {
		return
	}
	ts.mu.Lock()
	if ts.sessions[ss.id] == ss {
		delete(ts.sessions, ss.id)
	}
	ts.mu.Unlock()
}

// leads reports whether the session may be served right now: its term is
// the one this node trusts it leads, and it is still registered.
func (ss *Session) leads() bool {
	if ss.term == nil || ss.svc.opts.Leading() != ss.term.id {
		return false
	}
	select {
	case <-ss.done:
		return false
	default:
		return true
	}
}

// memory is where the session's leases, node info and stats go: its term's
// in-memory KV, or the node's own on a follower.
func (ss *Session) memory() kv.Backend {
	if ss.term != nil {
		return ss.term.memory
	}
	return ss.svc.opts.Memory()
}

// Handle runs the handler chain on req and returns the response to send.
// The handshake (the stream's first request) is also answered with the
// role's heartbeat_config, even when the chain ends with NotLeader, as
// GreptimeDB's is. A response whose header says NotLeader must be followed
// by the end of the stream (see IsNotLeader).
func (ss *Session) Handle(ctx context.Context, req *metapb.HeartbeatRequest, handshake bool) *metapb.HeartbeatResponse {
	ss.notePeer(req.GetPeer())
	hc := &handlerCtx{sess: ss, req: req, now: ss.svc.opts.Now(), resp: &metapb.HeartbeatResponse{}}
	for _, h := range ss.svc.handlers {
		if !h.accepts(ss.id.Role) {
			continue
		}
		stop, err := h.handle(ctx, hc)
		if err != nil {
			ss.svc.log.Warn("heartbeat handler failed; the heartbeat goes on", "handler", h.name, "pusher", ss.id.String(), "err", err)
		}
		if stop {
			break
		}
	}
	if handshake {
		hc.resp.HeartbeatConfig = ss.svc.Config(ss.id.Role)
	}
	ss.svc.metrics.answered(ss.id.Role, IsNotLeader(hc.resp))
	return hc.resp
}

// IsNotLeader reports whether a response tells the node to find the leader.
func IsNotLeader(resp *metapb.HeartbeatResponse) bool {
	return resp.GetHeader().GetError().GetCode() == NotLeaderCode
}

// NotLeaderHeader is the response header of a call a follower refuses.
func NotLeaderHeader() *metapb.ResponseHeader {
	return &metapb.ResponseHeader{ProtocolVersion: ProtocolVersion, Error: &metapb.Error{Code: NotLeaderCode, ErrMsg: NotLeaderMessage}}
}

// OKHeader is the header of a successful response.
func OKHeader() *metapb.ResponseHeader {
	return &metapb.ResponseHeader{ProtocolVersion: ProtocolVersion}
}
