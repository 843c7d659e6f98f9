package greptimefake

import (
	"errors"
	"fmt"
	"time"

	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
	"github.com/pgmetasrv/metasrv/pkg/instruction"
)

// Default Config.EventBuffer: small for the plain nodes a load test runs by
// the thousand (every one of which records its leases and invalidations),
// large for the region servers of functional tests.
const (
	plainEventBuffer  = 16
	regionEventBuffer = 1024
)

// ErrStopped is the error of a mailbox reply the node gave up sending
// because it was stopped first.
var ErrStopped = errors.New("greptimefake: node stopped")

// InstructionAction is what OnInstruction makes of one instruction; the
// zero value lets the node execute and answer it as GreptimeDB's datanode
// does.
type InstructionAction struct {
	// Wait, if set, holds the instruction back until it is closed (or
	// receives), or the node stops (then nothing is done).
	Wait <-chan struct{}
	// Skip drops the instruction: not executed, not answered (a lost
	// message).
	Skip bool
	// NoReply executes it without answering (a lost reply).
	NoReply bool
	// Reply, if set, is answered instead, and the instruction is not
	// executed.
	Reply instruction.Reply
}

// InstructionEvent is one mailbox message the node received, recorded once
// it was dealt with.
type InstructionEvent struct {
	Message *metapb.MailboxMessage
	// Instruction is the decoded payload; nil when it did not decode.
	Instruction instruction.Instruction
	// Executed is whether the node acted on it: a datanode region server
	// executes region instructions (unless OnInstruction said otherwise),
	// every node invalidates caches, and other instructions are ignored (a
	// frontend or flownode has no handler for them).
	Executed bool
	// Reply is the reply sent on the heartbeat stream; nil when none was.
	Reply *metapb.MailboxMessage
	// Err is why the payload did not decode, or why a reply due was not
	// sent.
	Err error
}

// Invalidation is one InvalidateCaches instruction a node received.
type Invalidation struct {
	Message *metapb.MailboxMessage
	Caches  []instruction.CacheIdent
}

// offer queues v on ch, dropping the oldest queued value when ch is full.
func offer[T any](ch chan T, v T) {
	for range 2 {
		select {
		case ch <- v:
			return
		default:
		}
		select {
		case <-ch:
		default:
		}
	}
}

// handleResponse is the node's heartbeat response handlers, in GreptimeDB's
// order: the region lease (RegionAliveKeeper, datanodes), then the mailbox
// message (parsed, then executed by the region handler in a task of its
// own, or cache invalidation).
func (n *Node) handleResponse(resp *metapb.HeartbeatResponse) {
	if l := resp.GetRegionLease(); l != nil && n.cfg.Role == metapb.Role_DATANODE {
		if n.regions != nil {
			n.regions.applyLease(l, n.start)
		}
		n.lastLease.Store(l)
		offer(n.leases, l)
	}
	msg := resp.GetMailboxMessage()
	if msg == nil || msg.GetPayload() == nil {
		return
	}
	n.log.Info("heartbeat: received mailbox message", "id", msg.GetId(), "subject", msg.GetSubject(), "from", msg.GetFrom())
	ins, err := instruction.FromMessage(msg)
	if err != nil {
		n.log.Error("heartbeat: cannot read mailbox message", "id", msg.GetId(), "err", err)
		offer(n.instructions, InstructionEvent{Message: msg, Err: err})
		return
	}
	if caches, ok := ins.(instruction.InvalidateCaches); ok {
		offer(n.invalidations, Invalidation{Message: msg, Caches: caches})
		offer(n.instructions, InstructionEvent{Message: msg, Instruction: ins, Executed: true})
		return
	}
	if n.regions == nil {
		offer(n.instructions, InstructionEvent{Message: msg, Instruction: ins})
		return
	}
	n.tasks.Go(func() { n.execute(msg, ins) })
}

// execute runs one region instruction and sends its reply, if any.
func (n *Node) execute(msg *metapb.MailboxMessage, ins instruction.Instruction) {
	var act InstructionAction
	if hook := n.cfg.OnInstruction; hook != nil {
		act = hook(msg, ins)
	}
	ev := InstructionEvent{Message: msg, Instruction: ins}
	if act.Wait != nil {
		select {
		case <-act.Wait:
		case <-n.stopCtx.Done():
			ev.Err = ErrStopped
			offer(n.instructions, ev)
			return
		}
	}
	if act.Skip {
		offer(n.instructions, ev)
		return
	}
	reply := act.Reply
	if reply == nil {
		reply = n.regions.execute(ins)
		ev.Executed = true
	}
	if reply != nil && !act.NoReply {
		ev.Reply, ev.Err = n.reply(msg, reply)
	}
	offer(n.instructions, ev)
}

// execute runs a region instruction as the datanode's handlers do; nil
// means no reply (an async flush).
func (r *regions) execute(ins instruction.Instruction) instruction.Reply {
	switch v := ins.(type) {
	case instruction.OpenRegions:
		for _, o := range v {
			r.open(uint64(o.RegionIdent.RegionID()), o.RegionIdent.Engine)
		}
		return instruction.OpenRegionsReply{Result: true}
	case instruction.CloseRegions:
		for _, c := range v {
			r.close(uint64(c.RegionID()))
		}
		return instruction.CloseRegionsReply{Result: true}
	case instruction.UpgradeRegions:
		out := instruction.UpgradeRegionsReply{Replies: make([]instruction.UpgradeRegionReply, 0, len(v))}
		for _, u := range v {
			out.Replies = append(out.Replies, r.upgrade(u))
		}
		return out
	case instruction.DowngradeRegions:
		out := instruction.DowngradeRegionsReply{Replies: make([]instruction.DowngradeRegionReply, 0, len(v))}
		for _, d := range v {
			out.Replies = append(out.Replies, r.downgrade(d))
		}
		return out
	case instruction.FlushRegions:
		if v.Strategy == instruction.FlushAsync {
			return nil
		}
		return r.flush(v)
	}
	return nil
}

// reply sends the reply to msg in an extra heartbeat on the node's stream,
// waiting for one while the node reconnects (GreptimeDB's replies wait in
// the send loop's queue meanwhile); a send that fails loses the reply, as
// GreptimeDB's does.
func (n *Node) reply(msg *metapb.MailboxMessage, r instruction.Reply) (*metapb.MailboxMessage, error) {
	out, err := instruction.ReplyMessage(msg, r, time.Now().UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("greptimefake: encode reply to mailbox message %d: %w", msg.GetId(), err)
	}
	for {
		n.mu.Lock()
		s, established := n.cur, n.established
		n.mu.Unlock()
		if s != nil {
			if err := s.send(n.mailboxReply(out)); err != nil {
				return nil, fmt.Errorf("greptimefake: send reply to mailbox message %d: %w", msg.GetId(), err)
			}
			return out, nil
		}
		select {
		case <-established:
		case <-n.stopCtx.Done():
			return nil, ErrStopped
		}
	}
}
