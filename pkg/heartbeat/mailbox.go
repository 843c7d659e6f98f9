package heartbeat

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
	"github.com/pgmetasrv/metasrv/pkg/election"
	"github.com/pgmetasrv/metasrv/pkg/instruction"
	"github.com/pgmetasrv/metasrv/pkg/sequence"
)

// Mailbox errors. A call made for a term this node does not run or trust
// it leads, or whose term ends while it waits, fails with an error for
// which errors.Is(err, election.ErrNotLeader) holds.
var (
	// ErrPusherNotFound means no session of the term is registered under
	// the id: the node is not connected to this leader (GreptimeDB's
	// PusherNotFound).
	ErrPusherNotFound = errors.New("heartbeat mailbox: pusher not found")
	// ErrMailboxTimeout means no reply came before the deadline; the
	// message may still be carried out (GreptimeDB's MailboxTimeout, which
	// its procedures retry later).
	ErrMailboxTimeout = errors.New("heartbeat mailbox: timeout")
	// ErrChannelClosed means the session ended (its stream closed, or the
	// node registered again on another) before the message went out or its
	// reply came back (GreptimeDB's MailboxChannelClosed).
	ErrChannelClosed = errors.New("heartbeat mailbox: channel closed")
)

// outboxSize is how many pushed responses wait for one stream, as
// GreptimeDB's per-stream channel of 128; a full outbox holds the pusher up.
const outboxSize = 128

// InvalidateSubject is the subject of InvalidateCaches broadcasts
// (GreptimeDB's DEFAULT_SUBJECT of cache_invalidator.rs).
const InvalidateSubject = "Invalidate table"

// mailbox is one term's messages awaiting a reply.
type mailbox struct {
	seq *sequence.Sequence // heartbeat_mailbox ids, allocated through the term's fenced store
	// done is closed when the term ends: every waiter fails, nothing more
	// is pushed.
	done chan struct{}

	mu      sync.Mutex
	waiters map[uint64]*waiter
}

// waiter is one message sent with Send, until its reply or its end.
type waiter struct {
	to    PusherID
	reply chan *metapb.MailboxMessage // buffered: the one reply never blocks the heartbeat
}

func newMailbox(ts *termState) *mailbox {
	return &mailbox{seq: sequence.NewHeartbeatMailbox(ts.store), done: make(chan struct{}), waiters: make(map[uint64]*waiter)}
}

func notLeader(term int64) error {
	return fmt.Errorf("heartbeat mailbox: term %d is not led by this node: %w", term, &election.NotLeaderError{})
}

// mailboxTerm is term's state if this node runs it and trusts it leads it.
func (s *Service) mailboxTerm(term int64) (*termState, error) {
	ts := s.current()
	if ts == nil || ts.id != term || s.opts.Leading() != term {
		return nil, notLeader(term)
	}
	return ts, nil
}

// session is the registered session id of the term.
func (ts *termState) session(id PusherID) (*Session, error) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.ended {
		return nil, notLeader(ts.id)
	}
	sess := ts.sessions[id]
	if sess == nil {
		return nil, fmt.Errorf("%w: %s", ErrPusherNotFound, id)
	}
	return sess, nil
}

// message is a mailbox message from this node, GreptimeDB's way.
func (s *Service) message(subject, to string, instr instruction.Instruction) (*metapb.MailboxMessage, error) {
	if instr == nil {
		return nil, errors.New("heartbeat mailbox: nil instruction")
	}
	msg, err := instruction.NewMessage(subject, "Metasrv@"+s.opts.ServerAddr(), to, s.opts.Now().UnixMilli(), instr)
	if err != nil {
		return nil, fmt.Errorf("heartbeat mailbox: %w", err)
	}
	return msg, nil
}

// Send pushes instr to the node registered as to in term and waits for its
// reply, which it returns (read it with instruction.ReplyFromMessage). The
// message gets the next id of the heartbeat_mailbox sequence. It fails with
// ErrPusherNotFound before anything is sent, ErrMailboxTimeout when no reply
// comes within timeout, ErrChannelClosed when the node's stream ends first,
// a not-leader error (election.ErrNotLeader) when the term is not this
// node's or ends, and ctx's error when ctx ends.
func (s *Service) Send(ctx context.Context, term int64, to PusherID, subject string, instr instruction.Instruction, timeout time.Duration) (*metapb.MailboxMessage, error) {
	if timeout <= 0 {
		return nil, fmt.Errorf("heartbeat mailbox: timeout %s: want more than 0", timeout)
	}
	ts, err := s.mailboxTerm(term)
	if err != nil {
		return nil, err
	}
	sess, err := ts.session(to)
	if err != nil {
		return nil, err
	}
	msg, err := s.message(subject, sess.address(), instr)
	if err != nil {
		return nil, err
	}
	c := s.metrics.mailboxOf(instr.Kind())
	reply, err := s.send(ctx, ts, sess, msg, timeout, c)
	switch {
	case err == nil:
		c.replied.Inc()
	case errors.Is(err, ErrMailboxTimeout):
		c.timedOut.Inc()
	default:
		c.failed.Inc()
	}
	return reply, err
}

func (s *Service) send(ctx context.Context, ts *termState, sess *Session, msg *metapb.MailboxMessage, timeout time.Duration, c *mailboxCounters) (*metapb.MailboxMessage, error) {
	mb := ts.mailbox
	id, err := mb.seq.Next(ctx)
	if err != nil {
		if closed(mb.done) {
			return nil, notLeader(ts.id)
		}
		return nil, fmt.Errorf("heartbeat mailbox: message id: %w", err)
	}
	msg.Id = id
	expire := time.NewTimer(timeout)
	defer expire.Stop()
	w := &waiter{to: sess.id, reply: make(chan *metapb.MailboxMessage, 1)}
	mb.mu.Lock()
	mb.waiters[id] = w
	mb.mu.Unlock()
	defer mb.forget(id, w)

	if err := s.push(ctx, ts, sess, msg, expire.C); err != nil {
		return nil, err
	}
	c.sent.Inc()
	s.log.Debug("mailbox message sent", "id", id, "subject", msg.GetSubject(), "pusher", sess.id.String(), "term", ts.id)
	select {
	case reply := <-w.reply:
		if closed(mb.done) {
			return nil, notLeader(ts.id) // a deposed leader acts on no reply
		}
		return reply, nil
	case <-expire.C:
		return nil, fmt.Errorf("%w: message %d (%s) to %s, after %s", ErrMailboxTimeout, id, msg.GetSubject(), sess.id, timeout)
	case <-sess.Done():
		if closed(mb.done) {
			return nil, notLeader(ts.id) // the term's end ends its sessions too
		}
		return nil, fmt.Errorf("%w: %s, waiting for the reply to message %d", ErrChannelClosed, sess.id, id)
	case <-mb.done:
		return nil, notLeader(ts.id)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (mb *mailbox) forget(id uint64, w *waiter) {
	mb.mu.Lock()
	if mb.waiters[id] == w {
		delete(mb.waiters, id)
	}
	mb.mu.Unlock()
}

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// push queues msg on the session's outbox, as the mailbox_message of a
// response with an OK header and nothing else (GreptimeDB's Pushers::push).
// A full outbox holds it up until the session or the term ends, ctx ends or
// expire fires; a session already ended fails at once.
func (s *Service) push(ctx context.Context, ts *termState, sess *Session, msg *metapb.MailboxMessage, expire <-chan time.Time) error {
	if closed(ts.mailbox.done) {
		return notLeader(ts.id)
	}
	if closed(sess.Done()) {
		return fmt.Errorf("%w: %s", ErrChannelClosed, sess.id)
	}
	resp := &metapb.HeartbeatResponse{Header: OKHeader(), MailboxMessage: msg}
	select {
	case sess.out <- resp:
		return nil
	case <-sess.Done():
		if closed(ts.mailbox.done) {
			return notLeader(ts.id)
		}
		return fmt.Errorf("%w: %s", ErrChannelClosed, sess.id)
	case <-ts.mailbox.done:
		return notLeader(ts.id)
	case <-expire:
		return fmt.Errorf("%w: message %d (%s) to %s: its outbox stayed full", ErrMailboxTimeout, msg.GetId(), msg.GetSubject(), sess.id)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// SendOneway pushes instr to the node registered as to in term with
// message id 0: no reply is awaited, and one that comes is dropped. It
// returns once the message is queued for the node's stream, with Send's
// errors but the timeout.
func (s *Service) SendOneway(ctx context.Context, term int64, to PusherID, subject string, instr instruction.Instruction) error {
	ts, err := s.mailboxTerm(term)
	if err != nil {
		return err
	}
	sess, err := ts.session(to)
	if err != nil {
		return err
	}
	msg, err := s.message(subject, sess.address(), instr)
	if err != nil {
		return err
	}
	c := s.metrics.mailboxOf(instr.Kind())
	if err := s.push(ctx, ts, sess, msg, nil); err != nil {
		c.failed.Inc()
		return err
	}
	c.sent.Inc()
	return nil
}

// Broadcast pushes instr with message id 0 to every session of role in
// term, to "{Role} broadcast" (GreptimeDB's Pushers::broadcast). It tries
// every session, then returns the errors joined; a session that ends
// meanwhile is skipped, and no session at all is no error.
func (s *Service) Broadcast(ctx context.Context, term int64, role metapb.Role, subject string, instr instruction.Instruction) error {
	ts, err := s.mailboxTerm(term)
	if err != nil {
		return err
	}
	msg, err := s.message(subject, roleName(role)+" broadcast", instr)
	if err != nil {
		return err
	}
	ts.mu.Lock()
	var targets []*Session
	for id, sess := range ts.sessions {
		if id.Role == role {
			targets = append(targets, sess)
		}
	}
	ts.mu.Unlock()

	c := s.metrics.mailboxOf(instr.Kind())
	errs := make([]error, len(targets))
	var wg sync.WaitGroup
	for i, sess := range targets {
		// One goroutine each: a node whose outbox is full holds up only its own push.
		wg.Go(func() { errs[i] = s.push(ctx, ts, sess, proto.CloneOf(msg), nil) })
	}
	wg.Wait()
	for i, err := range errs {
		switch {
		case err == nil:
			c.sent.Inc()
		case errors.Is(err, ErrChannelClosed):
			errs[i] = nil // it left the role's sessions while we pushed
		default:
			c.failed.Inc()
		}
	}
	return errors.Join(errs...)
}

// InvalidateCaches broadcasts InvalidateCaches(caches) to frontends, then
// datanodes, then flownodes, as GreptimeDB's MetasrvCacheInvalidator does,
// stopping at the first role whose broadcast fails.
func (s *Service) InvalidateCaches(ctx context.Context, term int64, caches []instruction.CacheIdent) error {
	for _, role := range []metapb.Role{metapb.Role_FRONTEND, metapb.Role_DATANODE, metapb.Role_FLOWNODE} {
		if err := s.Broadcast(ctx, term, role, InvalidateSubject, instruction.InvalidateCaches(caches)); err != nil {
			return fmt.Errorf("invalidate caches on %s nodes: %w", roleLabel(role), err)
		}
	}
	return nil
}

// deliver hands a reply that came in on sess's heartbeat to its waiter. A
// reply is matched by id and must come from the node the message went to;
// anything else (a one-way message's reply, a reply too late or from the
// wrong node) is dropped.
func (mb *mailbox) deliver(log *slog.Logger, sess *Session, msg *metapb.MailboxMessage, m *metrics) {
	id := msg.GetId()
	mb.mu.Lock()
	w := mb.waiters[id]
	if w != nil && w.to == sess.id {
		delete(mb.waiters, id)
	} else {
		w = nil
	}
	mb.mu.Unlock()
	if w == nil {
		m.replyDropped.Inc()
		log.Debug("mailbox reply for no waiting message; dropped", "id", id, "subject", msg.GetSubject(), "pusher", sess.id.String())
		return
	}
	w.reply <- msg
}
