// Package instruction holds GreptimeDB v1.1.4's mailbox payloads, byte for
// byte: the Instruction the leader pushes to a node on its heartbeat stream
// and the InstructionReply the node sends back (common/meta instruction.rs),
// both carried as the JSON payload of a greptime.v1.meta MailboxMessage.
//
// # Instructions
//
// An Instruction is one of OpenRegions, CloseRegions, UpgradeRegions,
// DowngradeRegions, InvalidateCaches and FlushRegions. serde tags it
// externally, {"CloseRegions":[{...}]}. Encode writes the form GreptimeDB
// v1.1.4 writes; Decode also reads what it still accepts from older
// versions: the singular tags (OpenRegion, CloseRegion, UpgradeRegion,
// DowngradeRegion) and a single object where a list is due. GreptimeDB's
// other variants (GetFileRefs, GcRegions, Suspend, staging and sync ones)
// are refused with ErrUnsupported.
//
// A reply is due for every instruction but InvalidateCaches and an Async
// FlushRegions (ExpectsReply).
//
// # Replies
//
// A Reply is one of OpenRegionsReply, CloseRegionsReply, UpgradeRegionsReply,
// DowngradeRegionsReply and FlushRegionsReply. serde tags it internally,
// {"type":"close_regions","result":true,"error":null}. DecodeReply also
// reads the singular tags (open_region, ...) and an upgrade or downgrade
// reply for one region written flat beside the tag.
//
// # Encodings
//
//   - A RegionID is a bare number, (table_id << 32) | region_number; a
//     string of digits is read too.
//   - Rust's Option is a Go pointer (nil: None), written as null unless
//     GreptimeDB skips it when None (OpenRegion.reason, FlushRegions.reason,
//     UpgradeRegion's replay entry ids); a Rust enum of unit variants is a Go
//     string type, "" for None where it is optional.
//   - OpenRegion.region_wal_options is keyed by region number, written as a
//     string ({"1":"..."}).
//   - UpgradeRegion.replay_timeout is a humantime string ("1s", "1m 30s");
//     DowngradeRegion.flush_timeout is serde's Duration,
//     {"secs":1,"nanos":0}.
//   - A flush result is the tuple [region_id, {"Ok":null}] or
//     [region_id, {"Err":"..."}].
//
// Decoding follows serde, which is stricter than encoding/json: names match
// exactly, a field without a default must be present and not null, unknown
// fields are ignored. Errors wrap ErrInvalid (or ErrUnsupported).
//
// # Messages
//
// NewMessage builds the MailboxMessage the leader sends (GreptimeDB's
// MailboxMessage::json_message); FromMessage and ReplyFromMessage read the
// payload of one; ReplyMessage is the message a node answers with: the same
// id and subject, from and to swapped, no header.
package instruction
