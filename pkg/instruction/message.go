package instruction

import (
	"fmt"

	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
)

// NewMessage is the mailbox message that carries i, as GreptimeDB's
// MailboxMessage::json_message builds it: a header (with an empty tracing
// context: metasrv traces nothing), id 0 for the mailbox to set, the JSON
// payload.
func NewMessage(subject, from, to string, timestampMillis int64, i Instruction) (*metapb.MailboxMessage, error) {
	payload, err := Encode(i)
	if err != nil {
		return nil, err
	}
	return &metapb.MailboxMessage{
		Header:          &metapb.MailboxMessageHeader{TracingContext: map[string]string{}},
		Subject:         subject,
		From:            from,
		To:              to,
		TimestampMillis: timestampMillis,
		Payload:         &metapb.MailboxMessage_Json{Json: string(payload)},
	}, nil
}

// FromMessage reads the instruction a mailbox message carries (what a
// GreptimeDB node's mailbox_message_to_incoming_message does).
func FromMessage(msg *metapb.MailboxMessage) (Instruction, error) {
	payload, err := jsonPayload(msg)
	if err != nil {
		return nil, err
	}
	return Decode([]byte(payload))
}

// ReplyFromMessage reads the reply a node's mailbox message carries
// (GreptimeDB's HeartbeatMailbox::json_reply).
func ReplyFromMessage(msg *metapb.MailboxMessage) (Reply, error) {
	payload, err := jsonPayload(msg)
	if err != nil {
		return nil, err
	}
	return DecodeReply([]byte(payload))
}

// ReplyMessage is the message a GreptimeDB node answers req with
// (outgoing_message_to_mailbox_message): the same id and subject, from and
// to swapped, no header, r as the JSON payload. It goes back to metasrv as
// the mailbox_message of an extra heartbeat.
func ReplyMessage(req *metapb.MailboxMessage, r Reply, timestampMillis int64) (*metapb.MailboxMessage, error) {
	payload, err := EncodeReply(r)
	if err != nil {
		return nil, err
	}
	return &metapb.MailboxMessage{
		Id:              req.GetId(),
		Subject:         req.GetSubject(),
		From:            req.GetTo(),
		To:              req.GetFrom(),
		TimestampMillis: timestampMillis,
		Payload:         &metapb.MailboxMessage_Json{Json: string(payload)},
	}, nil
}

func jsonPayload(msg *metapb.MailboxMessage) (string, error) {
	if msg == nil {
		return "", fmt.Errorf("%w: no mailbox message", ErrInvalid)
	}
	p, ok := msg.GetPayload().(*metapb.MailboxMessage_Json)
	if !ok || p == nil {
		return "", fmt.Errorf("%w: mailbox message %d (%s) has an empty payload", ErrInvalid, msg.GetId(), msg.GetSubject())
	}
	return p.Json, nil
}
