package migration

import (
	"context"
	"errors"
	"fmt"
	"time"

	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
	"github.com/pgmetasrv/metasrv/pkg/election"
	"github.com/pgmetasrv/metasrv/pkg/heartbeat"
	"github.com/pgmetasrv/metasrv/pkg/instruction"
	"github.com/pgmetasrv/metasrv/pkg/statuscode"
)

// Subjects of the migration's messages (GreptimeDB's, with the region ids
// in Rust's Debug form of a Vec<RegionId>).
const (
	subjectOpen      = "Open candidate regions: [%s]"
	subjectFlush     = "Flush regions: [%s]"
	subjectDowngrade = "Downgrade leader regions: [%s]"
	subjectUpgrade   = "Upgrade candidate regions: [%s]"
	subjectClose     = "Close downgraded regions: [%s]"
)

// send pushes instr to datanode and reads its reply. A send refused
// because the term is over is a fencing error, so the procedure stops; the
// mailbox's own errors (ErrPusherNotFound, ErrMailboxTimeout,
// ErrChannelClosed) are the caller's to judge.
func (p *migration) send(ctx context.Context, term int64, datanode uint64, subject string, instr instruction.Instruction, timeout time.Duration) (instruction.Reply, error) {
	to := heartbeat.PusherID{Role: metapb.Role_DATANODE, ID: datanode}
	msg, err := p.m.opts.Mailbox.Send(ctx, term, to, fmt.Sprintf(subject, regionName(p.data.RegionID)), instr, timeout)
	if err != nil {
		if errors.Is(err, election.ErrNotLeader) {
			return nil, fmt.Errorf("migration: %s to datanode %d: %w: %w", instr.Kind(), datanode, election.ErrFenced, err)
		}
		return nil, fmt.Errorf("%s to datanode %d: %w", instr.Kind(), datanode, storeError(err))
	}
	reply, err := instruction.ReplyFromMessage(msg)
	if err != nil {
		return nil, unexpectedReply(msg, err.Error())
	}
	return reply, nil
}

// unexpectedReply is GreptimeDB's UnexpectedInstructionReply, with the
// message as its MailboxMessage Display shows it.
func unexpectedReply(msg *metapb.MailboxMessage, reason string) error {
	return statuscode.Errorf(statuscode.Unexpected,
		"Received unexpected instruction reply, mailbox message: MailboxMessage(id=%d, subject=%s, from=%s, to=%s, timestamp_millis=%d, payload=%q), reason: %s",
		msg.GetId(), msg.GetSubject(), msg.GetFrom(), msg.GetTo(), msg.GetTimestampMillis(), msg.GetJson(), reason)
}

// unreachable reports whether err says the datanode is not connected to
// this leader, or left while the message waited.
func unreachable(err error) bool {
	return errors.Is(err, heartbeat.ErrPusherNotFound) || errors.Is(err, heartbeat.ErrChannelClosed)
}

// stopping reports whether err must end the step as it is: the term is
// over, or the step's context ended.
func stopping(ctx context.Context, err error) bool {
	return errors.Is(err, election.ErrFenced) || ctx.Err() != nil
}
