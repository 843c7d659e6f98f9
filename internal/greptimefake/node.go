// Package greptimefake is a fake GreptimeDB node — datanode, frontend or
// flownode — that talks greptime.v1.meta to metasrv exactly as GreptimeDB
// v1.1.4's meta-client and the nodes' heartbeat loops do: it asks every
// metasrv for the leader, opens the Heartbeat stream to it, handshakes, takes
// the heartbeat config from the handshake response, beats at that interval
// with the role's request, and on a header error or a broken stream asks for
// the leader again and reconnects.
//
// Every node records the InvalidateCaches instructions pushed to it
// (Invalidations) and every mailbox message it gets (Instructions); a
// datanode records the region leases it is granted (Leases). A datanode
// with Config.RegionServer is a region server besides: it serves
// greptime.v1.region.Region at its peer address, holds the regions created
// and opened there (Regions, RegionEvents), reports them in region_stats,
// applies the leases (granted roles, closeable regions, and the lease
// countdown that turns an unrenewed region into a follower) and executes
// the region instructions of the mailbox with GreptimeDB v1.1.4's replies.
// Without it a node holds no regions and answers no instruction by itself
// (SendMailboxReply sends one when a test wants it).
//
// It is cheap enough to run ten thousand in one process: per node one
// goroutine reading the stream (plus the one grpc-go keeps per stream), beats
// sent from a timer, and connections shared through a Conns pool.
package greptimefake

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/gzip" // registers "gzip" for Config.Compressor
	"google.golang.org/grpc/status"

	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
	regionpb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/region"
	"github.com/pgmetasrv/metasrv/pkg/instruction"
)

// Role is the kind of node (the generated enum).
type Role = metapb.Role

// The roles.
const (
	Datanode = metapb.Role_DATANODE
	Frontend = metapb.Role_FRONTEND
	Flownode = metapb.Role_FLOWNODE
)

// GreptimeDB constants the client follows.
const (
	// ProtocolVersion is PROTOCOL_VERSION, sent in every request header.
	ProtocolVersion = 1
	// CodeNotLeader is ErrorCode::NotLeader in a response header.
	CodeNotLeader = 2
	// BaseHeartbeatInterval is BASE_HEARTBEAT_INTERVAL: the interval and
	// retry interval a node falls back to when the handshake response has no
	// heartbeat_config.
	BaseHeartbeatInterval = 3 * time.Second
	// HeartbeatTimeout is HEARTBEAT_TIMEOUT, the heartbeat channel's timeout:
	// it bounds one ask-leader round and the opening of a stream.
	HeartbeatTimeout = 3 * time.Second
	// AskLeaderMaxRetry is DEFAULT_ASK_LEADER_MAX_RETRY: ask-leader rounds
	// before a connect attempt fails.
	AskLeaderMaxRetry = 3
)

// stopGrace is how long Stop waits, after closing the request stream, for
// metasrv to end the stream before cancelling it.
const stopGrace = time.Second

// handshakeBuffer is how many unread Handshake signals a node keeps; older
// ones are dropped first.
const handshakeBuffer = 8

// Config describes one fake node.
type Config struct {
	// Endpoints are the metasrv addresses (metasrv_addrs).
	Endpoints []string
	Role      metapb.Role
	// ID is the node id of a datanode or flownode (member_id and peer.id).
	// A frontend sends member_id 0 and peer.id 0 whatever it is.
	ID uint64
	// Addr is the node's own advertised address (peer.addr); a region
	// server binds it and advertises the address bound.
	Addr string
	// Conns is the shared connection pool; nil = the node makes its own and
	// closes it on Stop.
	Conns *Conns
	// Logger; nil discards.
	Logger *slog.Logger
	// RegionStats returns the region stats a datanode reports in each beat;
	// nil = none. Called from a timer goroutine, one call at a time.
	RegionStats func() []*metapb.RegionStat
	// OnResponse, if set, is called with every heartbeat response received,
	// handshake responses and error responses included, from the node's
	// goroutine; keep it quick.
	OnResponse func(*metapb.HeartbeatResponse)
	// AskLeaderTimeout bounds one ask-leader round and the opening of a
	// stream up to the handshake response (default HeartbeatTimeout).
	AskLeaderTimeout time.Duration
	// Compressor is the grpc-encoding of every request: "" none, "zstd" (what
	// GreptimeDB sends; someone must have registered a zstd codec with
	// grpc-go), "gzip". New fails on a name grpc-go does not know.
	Compressor string
	// RetryInterval is the wait between failed connect attempts before the
	// first handshake has brought a retry interval (default
	// BaseHeartbeatInterval). GreptimeDB nodes fail to start instead.
	RetryInterval time.Duration
	// Latency, if set, is a histogram shared with other nodes that this node
	// records its request -> response latencies into; nil = its own.
	Latency *Histogram
	// EventBuffer is how many unread entries of each kind (RegionEvents,
	// Leases, Instructions, Invalidations) the node keeps before it drops
	// the oldest; default 16, 1024 for a region server.
	EventBuffer int

	// RegionServer makes a datanode a region server (see the package
	// comment). Start binds greptime.v1.region.Region at Addr (default
	// 127.0.0.1:0) and the bound address becomes the peer address it
	// reports (PeerAddr). Datanodes only, and not with RegionStats: the
	// region_stats are the regions held.
	RegionServer bool
	// OnRegionRequest, if set, is called with every region request before
	// it is executed, on the gRPC call's goroutine; an error is the answer
	// and the request is not executed (a *statuscode.Error is answered with
	// its gRPC code and x-greptime-err-code, a status error as it is). It
	// may block to hold a request back, but must return when ctx ends.
	OnRegionRequest func(ctx context.Context, req *regionpb.RegionRequest) error
	// OnInstruction, if set, is called with every region instruction a
	// region server gets, in the instruction's own goroutine, before it is
	// executed; what it returns decides what happens (the zero
	// InstructionAction: execute and answer).
	OnInstruction func(msg *metapb.MailboxMessage, ins instruction.Instruction) InstructionAction
}

// Handshake is the signal of one completed handshake.
type Handshake struct {
	// Leader is the metasrv the stream is open to.
	Leader string
	// Config is the heartbeat config the node took: the response's, or
	// BaseHeartbeatInterval for both when the response had none.
	Config *metapb.HeartbeatConfig
	// Default is true when the response had no heartbeat_config.
	Default bool
	// Header is the handshake response's header, which the node does not
	// check (as GreptimeDB: a follower's NotLeader handshake is accepted).
	Header *metapb.ResponseHeader
	At     time.Time
}

// Node is one fake GreptimeDB node.
type Node struct {
	cfg      Config
	log      *slog.Logger
	conns    *Conns
	ownConns bool
	callOpts []grpc.CallOption
	hist     *Histogram

	header  *metapb.RequestHeader
	peer    *metapb.Peer
	info    *metapb.NodeInfo
	epochMs uint64    // node_epoch: start time, unix ms
	start   time.Time // monotonic origin of duration_since_epoch and latencies

	handshakes chan Handshake

	// What the node records; regions, rs and regionEvents are nil without
	// Config.RegionServer.
	regions       *regions
	rs            *regionServer
	regionEvents  chan RegionEvent
	leases        chan *metapb.RegionLease
	lastLease     atomic.Pointer[metapb.RegionLease]
	instructions  chan InstructionEvent
	invalidations chan Invalidation
	// tasks are the instructions being executed.
	tasks sync.WaitGroup

	mu      sync.Mutex
	started bool
	stopped bool
	leader  string
	cur     *session
	// established is closed when cur is set, and replaced when it is
	// cleared: mailbox replies wait on it for a stream.
	established chan struct{}
	stopCtx     context.Context // cancelled by Stop or Start's context
	stop        context.CancelFunc
	baseCtx     context.Context // Start's values, never cancelled: streams end gracefully
	done        chan struct{}

	sent, responses, handshakeN, reconnects, notLeader, errs atomic.Uint64
}

// New checks cfg and returns a node that is not started.
func New(cfg Config) (*Node, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("greptimefake: no endpoints")
	}
	if _, ok := metapb.Role_name[int32(cfg.Role)]; !ok {
		return nil, fmt.Errorf("greptimefake: unknown role %d", cfg.Role)
	}
	if cfg.Compressor != "" && encoding.GetCompressor(cfg.Compressor) == nil {
		return nil, fmt.Errorf("greptimefake: compressor %q is not registered with grpc-go", cfg.Compressor)
	}
	if cfg.AskLeaderTimeout <= 0 {
		cfg.AskLeaderTimeout = HeartbeatTimeout
	}
	if cfg.RetryInterval <= 0 {
		cfg.RetryInterval = BaseHeartbeatInterval
	}
	if cfg.EventBuffer <= 0 {
		cfg.EventBuffer = plainEventBuffer
		if cfg.RegionServer {
			cfg.EventBuffer = regionEventBuffer
		}
	}
	if cfg.RegionServer {
		if cfg.Role != metapb.Role_DATANODE {
			return nil, fmt.Errorf("greptimefake: a %s cannot be a region server", cfg.Role)
		}
		if cfg.RegionStats != nil {
			return nil, errors.New("greptimefake: RegionStats and RegionServer exclude each other")
		}
		if cfg.Addr == "" {
			cfg.Addr = "127.0.0.1:0"
		}
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	n := &Node{
		cfg:        cfg,
		conns:      cfg.Conns,
		hist:       cfg.Latency,
		start:      time.Now(),
		handshakes: make(chan Handshake, handshakeBuffer),

		leases:        make(chan *metapb.RegionLease, cfg.EventBuffer),
		instructions:  make(chan InstructionEvent, cfg.EventBuffer),
		invalidations: make(chan Invalidation, cfg.EventBuffer),
		established:   make(chan struct{}),
	}
	if cfg.RegionServer {
		n.regions = newRegions()
		n.regionEvents = make(chan RegionEvent, cfg.EventBuffer)
	}
	if n.conns == nil {
		n.conns = NewConns()
		n.ownConns = true
	}
	if n.hist == nil {
		n.hist = new(Histogram)
	}
	if cfg.Compressor != "" {
		n.callOpts = []grpc.CallOption{grpc.UseCompressor(cfg.Compressor)}
	}
	n.epochMs = uint64(n.start.UnixMilli())
	id := cfg.ID
	if cfg.Role == metapb.Role_FRONTEND {
		id = 0 // frontend_default_options: MetaClientBuilder::new(0, Frontend); peer id "calculated by metasrv"
	}
	n.header = &metapb.RequestHeader{ProtocolVersion: ProtocolVersion, MemberId: id, Role: cfg.Role}
	n.peer = &metapb.Peer{Id: id, Addr: cfg.Addr}
	n.info = nodeInfo(n.epochMs)
	n.log = logger.With("role", cfg.Role.String(), "id", id, "addr", cfg.Addr)
	return n, nil
}

// Start starts the node and returns at once, a region server's listener
// bound and serving; the node asks for the leader and handshakes in the
// background (watch Handshakes). It runs until Stop,
// or until ctx ends (which stops it as Stop does, but Stop must still be
// called to wait for it and release its connections).
func (n *Node) Start(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch {
	case n.stopped:
		return errors.New("greptimefake: node is stopped")
	case n.started:
		return errors.New("greptimefake: node already started")
	}
	if n.cfg.RegionServer {
		rs, err := n.listenRegions(n.cfg.Addr)
		if err != nil {
			return err
		}
		n.rs = rs
		n.peer = &metapb.Peer{Id: n.peer.GetId(), Addr: rs.lis.Addr().String()}
		n.log = n.log.With("peer_addr", n.peer.GetAddr())
		go rs.serve(n.log)
	}
	n.started = true
	n.stopCtx, n.stop = context.WithCancel(ctx)
	n.baseCtx = context.WithoutCancel(ctx)
	n.done = make(chan struct{})
	go n.run()
	return nil
}

// Stop closes the request stream (CloseSend, as dropping GreptimeDB's sender
// does), waits up to a second for metasrv to end the stream, cancels what is
// left and returns when the node's goroutines are done: instructions being
// executed give up, the region server cancels its calls in flight and
// closes. Safe to call twice, and before Start.
func (n *Node) Stop() {
	n.mu.Lock()
	first := !n.stopped
	n.stopped = true
	stop, done := n.stop, n.done
	n.mu.Unlock()
	if stop != nil {
		stop()
		<-done
		n.tasks.Wait()
	}
	if first && n.rs != nil {
		n.rs.stop()
	}
	if first && n.ownConns {
		n.conns.Close()
	}
}

// Leader is the leader address the node uses: the answer of its last
// successful ask-leader round ("" before any).
func (n *Node) Leader() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.leader
}

// Handshakes signals every completed handshake. It is buffered; when the
// reader falls behind the oldest signals are dropped, never blocking the node.
func (n *Node) Handshakes() <-chan Handshake { return n.handshakes }

// Stats returns the node's counters.
func (n *Node) Stats() Stats {
	return Stats{
		Sent:       n.sent.Load(),
		Responses:  n.responses.Load(),
		Handshakes: n.handshakeN.Load(),
		Reconnects: n.reconnects.Load(),
		NotLeader:  n.notLeader.Load(),
		Errors:     n.errs.Load(),
		Latency:    n.hist.Snapshot(),
	}
}

// SendMailboxReply sends msg on the current stream at once, in a request
// shaped as the role's mailbox replies are. It fails when no stream is
// established.
func (n *Node) SendMailboxReply(msg *metapb.MailboxMessage) error {
	n.mu.Lock()
	s := n.cur
	n.mu.Unlock()
	if s == nil {
		return errors.New("greptimefake: no heartbeat stream")
	}
	return s.send(n.mailboxReply(msg))
}

// run is the node's goroutine: connect, serve the stream, reconnect.
//
// After a lost stream a datanode reconnects at once (its send loop's next
// send fails and calls create_streams) and waits retry_interval only between
// failed attempts; a frontend or flownode waits retry_interval before every
// attempt (start_with_retry). A datanode keeps the interval of its first
// handshake; the others take each handshake's. All take each handshake's
// retry interval.
func (n *Node) run() {
	defer close(n.done)
	retry := n.cfg.RetryInterval
	var interval time.Duration
	haveInterval := false
	for {
		if n.stopCtx.Err() != nil {
			return
		}
		s, hs, err := n.connect()
		if err != nil {
			if n.stopCtx.Err() != nil {
				return
			}
			n.errs.Add(1)
			n.log.Warn("heartbeat: connect failed", "err", err, "retry_in", retry)
			if !n.wait(retry) {
				return
			}
			continue
		}
		hb := durationMs(hs.Config.GetHeartbeatIntervalMs(), "heartbeat_interval_ms", n.log)
		retry = durationMs(hs.Config.GetRetryIntervalMs(), "retry_interval_ms", n.log)
		if n.cfg.Role != metapb.Role_DATANODE || !haveInterval {
			interval, haveInterval = hb, true
		}
		if n.regions != nil {
			n.regions.startKeeper(hb) // the keeper follows every handshake's interval
		}
		n.serve(s, interval, hs)
		if n.stopCtx.Err() != nil {
			return
		}
		n.reconnects.Add(1)
		if n.cfg.Role != metapb.Role_DATANODE && !n.wait(retry) {
			return
		}
	}
}

// durationMs turns a config value into a duration; 0 (which would make
// GreptimeDB spin or panic) is taken as 1 ms.
func durationMs(ms uint64, name string, log *slog.Logger) time.Duration {
	if ms == 0 {
		log.Warn("heartbeat: metasrv sent 0, using 1ms", "field", name)
		ms = 1
	}
	return time.Duration(ms) * time.Millisecond
}

// wait sleeps d; false when the node was stopped meanwhile.
func (n *Node) wait(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-n.stopCtx.Done():
		return false
	}
}

// askLeader is ask_leader(): up to AskLeaderMaxRetry rounds, no pause
// between them; the answer becomes the cached leader.
func (n *Node) askLeader() (string, error) {
	var err error
	for range AskLeaderMaxRetry {
		var leader string
		leader, err = AskLeader(n.stopCtx, n.conns, n.cfg.Endpoints, n.header, n.cfg.AskLeaderTimeout, n.callOpts...)
		if err == nil {
			n.mu.Lock()
			n.leader = leader
			n.mu.Unlock()
			return leader, nil
		}
		if n.stopCtx.Err() != nil {
			return "", err
		}
		n.log.Warn("heartbeat: ask leader failed", "err", err)
	}
	return "", fmt.Errorf("ask leader failed %d times: %w", AskLeaderMaxRetry, err)
}

// connect is Client::heartbeat(): ask for the leader, open the stream to it,
// send the handshake (the header only) and read the first response, whose
// header is not checked and whose heartbeat_config is taken.
func (n *Node) connect() (*session, Handshake, error) {
	leader, err := n.askLeader()
	if err != nil {
		return nil, Handshake{}, err
	}
	cc, err := n.conns.Get(leader)
	if err != nil {
		return nil, Handshake{}, err
	}
	sctx, cancel := context.WithCancel(n.baseCtx)
	s := &session{n: n, leader: leader, cancel: cancel}
	s.unwatch = context.AfterFunc(n.stopCtx, s.onStop)
	var timedOut atomic.Bool
	deadline := time.AfterFunc(n.cfg.AskLeaderTimeout, func() {
		timedOut.Store(true)
		cancel()
	})
	fail := func(err error) (*session, Handshake, error) {
		deadline.Stop()
		s.end()
		if timedOut.Load() {
			err = fmt.Errorf("no handshake response from %s within %s: %w", leader, n.cfg.AskLeaderTimeout, err)
		}
		return nil, Handshake{}, err
	}

	stream, err := metapb.NewHeartbeatClient(cc).Heartbeat(sctx, n.callOpts...)
	if err != nil {
		return fail(fmt.Errorf("open heartbeat stream to %s: %w", leader, err))
	}
	if err := stream.Send(&metapb.HeartbeatRequest{Header: n.header}); err != nil {
		if errors.Is(err, io.EOF) {
			_, err = stream.Recv() // the stream's real status
		}
		return fail(fmt.Errorf("send handshake to %s: %w", leader, err))
	}
	resp, err := stream.Recv()
	if errors.Is(err, io.EOF) {
		err = errors.New("stream ended before the handshake response")
	}
	if err != nil {
		return fail(fmt.Errorf("handshake with %s: %w", leader, err))
	}
	if !deadline.Stop() {
		return fail(context.DeadlineExceeded)
	}
	s.stream = stream

	hs := Handshake{Leader: leader, Config: resp.GetHeartbeatConfig(), Header: resp.GetHeader(), At: time.Now()}
	if hs.Config == nil {
		hs.Default = true
		ms := uint64(BaseHeartbeatInterval.Milliseconds())
		hs.Config = &metapb.HeartbeatConfig{HeartbeatIntervalMs: ms, RetryIntervalMs: ms}
		n.log.Warn("heartbeat: metasrv didn't provide heartbeat_config, using default", "leader", leader, "interval", BaseHeartbeatInterval)
	}
	if resp.GetHeader().GetError().GetCode() == CodeNotLeader {
		n.notLeader.Add(1)
	}
	if f := n.cfg.OnResponse; f != nil {
		f(resp)
	}
	n.handshakeN.Add(1)
	n.log.Info("heartbeat: handshake successful", "leader", leader,
		"interval_ms", hs.Config.GetHeartbeatIntervalMs(), "retry_interval_ms", hs.Config.GetRetryIntervalMs())
	return s, hs, nil
}

// serve beats every interval (the first at once) and reads responses until
// the stream breaks, ends, or a response header carries an error.
func (n *Node) serve(s *session, interval time.Duration, hs Handshake) {
	s.begin(interval)
	n.mu.Lock()
	n.cur = s
	close(n.established)
	n.mu.Unlock()
	n.signal(hs)
	defer func() {
		n.mu.Lock()
		if n.cur == s {
			n.cur = nil
			n.established = make(chan struct{})
		}
		n.mu.Unlock()
		s.end()
	}()
	for {
		resp, err := s.stream.Recv()
		if err != nil {
			if n.stopCtx.Err() != nil && (errors.Is(err, io.EOF) || status.Code(err) == codes.Canceled) {
				n.log.Debug("heartbeat: stream closed on stop", "leader", s.leader)
				return
			}
			n.errs.Add(1)
			if errors.Is(err, io.EOF) {
				n.log.Warn("heartbeat: response stream closed", "leader", s.leader)
			} else {
				n.log.Warn("heartbeat: error reading heartbeat response", "leader", s.leader, "err", err)
			}
			return
		}
		n.responses.Add(1)
		if resp.GetMailboxMessage() == nil { // pushed instructions answer no request
			if sentAt, ok := s.popSent(); ok {
				n.hist.Record(time.Since(n.start) - sentAt)
			}
		}
		if f := n.cfg.OnResponse; f != nil {
			f(resp)
		}
		if e := resp.GetHeader().GetError(); e != nil { // check_response_header
			if e.GetCode() == CodeNotLeader {
				n.notLeader.Add(1)
			} else {
				n.errs.Add(1)
			}
			n.log.Warn("heartbeat: error in response header", "leader", s.leader, "code", e.GetCode(), "err_msg", e.GetErrMsg())
			return
		}
		n.handleResponse(resp)
	}
}

// signal queues hs for Handshakes, dropping the oldest when full.
func (n *Node) signal(hs Handshake) { offer(n.handshakes, hs) }

// session is one heartbeat stream.
type session struct {
	n      *Node
	leader string
	stream grpc.BidiStreamingClient[metapb.HeartbeatRequest, metapb.HeartbeatResponse]
	cancel context.CancelFunc
	// unwatch stops the AfterFunc that runs onStop when the node stops.
	unwatch func() bool

	// sendMu serialises Send and CloseSend (grpc-go allows one sender) and
	// guards the fields below it.
	sendMu      sync.Mutex
	established bool
	closed      bool
	interval    time.Duration
	timer       *time.Timer
	next        time.Time

	// pendMu guards the send times of unanswered requests and the stop
	// grace timer; never held across a Send.
	pendMu sync.Mutex
	ended  bool
	grace  *time.Timer
	sentAt [16]time.Duration // ring of send times since n.start
	head   int
	count  int
}

// begin starts beating: the first beat at once (as the nodes' loops, which
// start with a zero sleep or an immediate interval tick).
func (s *session) begin(interval time.Duration) {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	s.established = true
	s.interval = interval
	if s.closed || s.n.stopCtx.Err() != nil {
		return
	}
	s.next = time.Now()
	s.timer = time.AfterFunc(0, s.tick)
}

// tick sends one beat and schedules the next one interval later (the
// datanode resets its sleep to now + interval, the others tick at the
// interval).
func (s *session) tick() {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	if s.closed {
		return
	}
	s.next = time.Now().Add(s.interval)
	if err := s.sendLocked(s.n.beat()); err != nil {
		return // the stream is done; serve sees why and reconnects
	}
	s.timer.Reset(time.Until(s.next))
}

// send sends req now.
func (s *session) send(req *metapb.HeartbeatRequest) error {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	if s.closed {
		return errors.New("greptimefake: heartbeat stream is closed")
	}
	return s.sendLocked(req)
}

func (s *session) sendLocked(req *metapb.HeartbeatRequest) error {
	s.pushSent(time.Since(s.n.start))
	if err := s.stream.Send(req); err != nil {
		if s.n.stopCtx.Err() != nil {
			return err
		}
		s.n.errs.Add(1)
		s.n.log.Warn("heartbeat: failed to send heartbeat to metasrv", "leader", s.leader, "err", err)
		return err
	}
	s.n.sent.Add(1)
	return nil
}

// onStop runs when the node stops: before the handshake it cancels the
// stream; after it, it closes the request side and lets metasrv end the
// stream, cancelling it if metasrv has not done so within stopGrace.
func (s *session) onStop() {
	s.pendMu.Lock()
	if !s.ended {
		s.grace = time.AfterFunc(stopGrace, s.cancel) // also frees a Send stuck on flow control
	}
	s.pendMu.Unlock()

	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	if !s.established {
		s.cancel()
		return
	}
	if s.closed {
		return
	}
	s.closed = true
	if s.timer != nil {
		s.timer.Stop()
	}
	if err := s.stream.CloseSend(); err != nil {
		s.n.log.Debug("heartbeat: close send", "err", err)
	}
}

// end releases the stream: no more beats, the stream cancelled (what
// dropping GreptimeDB's response stream does).
func (s *session) end() {
	s.sendMu.Lock()
	s.closed = true
	if s.timer != nil {
		s.timer.Stop()
	}
	s.sendMu.Unlock()
	s.unwatch()
	s.pendMu.Lock()
	s.ended = true
	if s.grace != nil {
		s.grace.Stop()
	}
	s.pendMu.Unlock()
	s.cancel()
}

// pushSent records a send time; when 16 are unanswered the oldest is
// forgotten.
func (s *session) pushSent(t time.Duration) {
	s.pendMu.Lock()
	defer s.pendMu.Unlock()
	if s.count == len(s.sentAt) {
		s.head = (s.head + 1) % len(s.sentAt)
		s.count--
	}
	s.sentAt[(s.head+s.count)%len(s.sentAt)] = t
	s.count++
}

// popSent takes the oldest unanswered send time: metasrv answers a stream's
// requests in order.
func (s *session) popSent() (time.Duration, bool) {
	s.pendMu.Lock()
	defer s.pendMu.Unlock()
	if s.count == 0 {
		return 0, false
	}
	t := s.sentAt[s.head]
	s.head = (s.head + 1) % len(s.sentAt)
	s.count--
	return t, true
}
