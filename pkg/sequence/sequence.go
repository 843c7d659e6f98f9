// Package sequence hands out unique, increasing ids (table ids, flow ids,
// heartbeat mailbox message ids) exactly as GreptimeDB's Sequence does
// (common/meta sequence.rs), on the same key and value, so that metasrv and a
// GreptimeDB metasrv sharing one table (or following each other as leaders)
// never hand out the same id.
//
// # Stored state
//
// The counter lives under greptimekey.SequenceKey(name), __meta_seq-{name}, as
// 8 bytes little-endian: the exclusive end of the last range any allocator
// took, that is the next id nobody owns. An absent key, or a value below
// Initial, means Initial.
//
// # Allocation
//
// A Sequence hands out ids from a range it holds in memory. When the range is
// used up it takes the next one, [start, start+step), by moving the counter
// from start to start+step with a compare-and-put:
//
//   - the first guess of start is where the last range ended (Initial at
//     first), expected to be stored as is, or absent for Initial;
//   - when the compare fails, the value that won becomes the new start (at
//     least Initial) and the new expectation; when the key turned out absent,
//     start is Initial and the expectation "absent";
//   - the step is cut so that the range ends at Max at the latest; an empty
//     range (Step 0, or the counter at Max) is ErrExhausted.
//
// Each range is owned by whoever won the compare-and-put that took it, so no
// id is handed out twice, whoever else allocates from the same key. Ids left
// in a range when its holder goes away (a leader change) are never used.
//
// The store is a kv.Backend whose CompareAndPut treats an empty Expect as
// "the key is absent" and returns the current pair in PrevKv when the compare
// fails, as every metasrv backend does. GreptimeDB allocates on the
// persistent store, not the leader cache; either is correct, since both
// decide the compare on what PostgreSQL committed.
package sequence

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/kv"
)

// MaxAttempts bounds the compare-and-put attempts of one range allocation
// (GreptimeDB's force_quit), so that a counter that keeps changing under us
// ends in an error rather than a loop.
const MaxAttempts = 1024

var (
	// ErrExhausted means the sequence has no ids left below its Max (or
	// takes none per range: Step 0).
	ErrExhausted = errors.New("sequence: exhausted")
	// ErrCorrupt means the stored counter is not an 8-byte value.
	ErrCorrupt = errors.New("sequence: corrupt counter")
)

// Options configure a Sequence, as GreptimeDB's SequenceBuilder.
type Options struct {
	// Name picks the counter key, greptimekey.SequenceKey(Name).
	Name string
	// Initial is the smallest id handed out; the counter starts there.
	Initial uint64
	// Step is how many ids one range takes. 0 hands out nothing: every Next
	// fails with ErrExhausted, as in GreptimeDB.
	Step uint64
	// Max is the exclusive upper bound of the ids; 0 means math.MaxUint64
	// (GreptimeDB's default).
	Max uint64
	// SkipZero never hands out id 0 (the heartbeat mailbox reserves message
	// id 0 for one-way messages); with Initial above 0 it has no effect.
	SkipZero bool
}

// Sequence allocates ids. It is safe for concurrent use; concurrent callers
// of one Sequence take turns, and a range allocation holds the others up.
type Sequence struct {
	opts  Options
	store kv.Backend
	key   []byte

	mu     sync.Mutex
	next   uint64 // the next id to hand out; the end of the last range once it is used up
	end    uint64 // exclusive end of the range held
	loaded bool   // a range has been taken
}

// New returns a sequence over store. Hand it the store it must allocate in
// (the leader's store of the current term: a new term needs a new Sequence,
// whose first range starts after everything already taken).
func New(store kv.Backend, opts Options) (*Sequence, error) {
	if opts.Name == "" {
		return nil, errors.New("sequence: name must not be empty")
	}
	if store == nil {
		return nil, fmt.Errorf("sequence %q: nil store", opts.Name)
	}
	return newSequence(store, opts), nil
}

func newSequence(store kv.Backend, opts Options) *Sequence {
	if opts.Max == 0 {
		opts.Max = math.MaxUint64
	}
	return &Sequence{
		opts:  opts,
		store: store,
		key:   greptimekey.SequenceKey(opts.Name),
		next:  opts.Initial,
		end:   opts.Initial,
	}
}

// GreptimeDB's sequences (meta-srv metasrv/builder.rs).
const (
	// MinUserTableID is the first table id for user tables; the ids below
	// are GreptimeDB's system tables.
	MinUserTableID = 1024
	// MinUserFlowID is the first flow id.
	MinUserFlowID = 1024
	tableIDStep   = 10
	flowIDStep    = 10
	mailboxStep   = 100
)

// NewTableID is the table id sequence: __meta_seq-table_id, from 1024, 10
// ids per range.
func NewTableID(store kv.Backend) *Sequence {
	return newSequence(store, Options{Name: greptimekey.SeqTableID, Initial: MinUserTableID, Step: tableIDStep})
}

// NewFlowID is the flow id sequence: __meta_seq-flow_id, from 1024, 10 ids
// per range.
func NewFlowID(store kv.Backend) *Sequence {
	return newSequence(store, Options{Name: greptimekey.SeqFlowID, Initial: MinUserFlowID, Step: flowIDStep})
}

// NewHeartbeatMailbox is the mailbox message id sequence:
// __meta_seq-heartbeat_mailbox, from 1, 100 ids per range, never 0.
func NewHeartbeatMailbox(store kv.Backend) *Sequence {
	return newSequence(store, Options{Name: greptimekey.SeqHeartbeatMailbox, Initial: 1, Step: mailboxStep, SkipZero: true})
}

// Name is the sequence's name.
func (s *Sequence) Name() string { return s.opts.Name }

// Next returns the next id, taking a new range from the store when the one
// held is used up. On an error nothing is handed out and the next call tries
// again from the same point.
func (s *Sequence) Next(ctx context.Context) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if !s.loaded || s.next >= s.end {
			start, end, err := s.nextRange(ctx)
			if err != nil {
				return 0, err
			}
			s.next, s.end, s.loaded = start, end, true
		}
		id := s.next
		s.next++
		if id == 0 && s.opts.SkipZero {
			continue
		}
		return id, nil
	}
}

// nextRange takes [start, end) from the counter; see the package comment.
func (s *Sequence) nextRange(ctx context.Context) (start, end uint64, err error) {
	start = s.next
	var expect []byte // empty: the key must be absent
	if start != s.opts.Initial {
		expect = encode(start)
	}
	for range MaxAttempts {
		// GreptimeDB computes max - start unchecked; a counter stored above
		// Max would wrap there, and is exhausted here.
		if start >= s.opts.Max || s.opts.Step == 0 {
			return 0, 0, fmt.Errorf("%w: %q has no ids left below %d (step %d, next %d)", ErrExhausted, s.key, s.opts.Max, s.opts.Step, start)
		}
		step := min(s.opts.Step, s.opts.Max-start)
		resp, err := s.store.CompareAndPut(ctx, kv.CompareAndPutRequest{Key: s.key, Expect: expect, Value: encode(start + step)})
		if err != nil {
			return 0, 0, fmt.Errorf("sequence %q: take a range at %d: %w", s.key, start, err)
		}
		if resp.Success {
			return start, start + step, nil
		}
		if resp.PrevKv == nil {
			start, expect = s.opts.Initial, nil
			continue
		}
		v, err := decode(s.key, resp.PrevKv.Value)
		if err != nil {
			return 0, 0, err
		}
		start, expect = max(v, s.opts.Initial), resp.PrevKv.Value
	}
	return 0, 0, fmt.Errorf("sequence %q: the counter kept changing over %d compare-and-put attempts: %w", s.key, MaxAttempts, kv.ErrUnavailable)
}

func encode(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }

func decode(key, value []byte) (uint64, error) {
	if len(value) != 8 {
		shown := value[:min(len(value), 16)]
		return 0, fmt.Errorf("%w: %q holds %d bytes (%x), want 8 (a little-endian u64)", ErrCorrupt, key, len(value), shown)
	}
	return binary.LittleEndian.Uint64(value), nil
}
