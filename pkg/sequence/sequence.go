// Package sequence hands out unique, increasing ids (table ids and the like)
// from a counter kept in the KV store. Ids are reserved in batches with a
// compare-and-put on the counter key, so an id is never handed out twice, even
// across leader changes or several sequences on the same key: each batch is
// owned by whoever won the CAS that reserved it, and a reserved batch that is
// not used up is simply skipped.
package sequence

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/pgmetasrv/metasrv/pkg/kv"
)

// KeyPrefix is where counters live, as GreptimeDB's __meta_seq keys.
const KeyPrefix = "__meta_seq/"

// ErrExhausted means the sequence reached its upper bound.
var ErrExhausted = errors.New("sequence: exhausted")

// Options configure a Sequence.
type Options struct {
	// Name picks the counter key (KeyPrefix + Name).
	Name string
	// Start is the first id when the counter does not exist yet.
	Start uint64
	// Step is how many ids one reservation takes.
	Step uint64
	// Max is the exclusive upper bound; 0 means no bound.
	Max uint64
	// MaxCASAttempts bounds the retries when other writers race on the counter.
	MaxCASAttempts int
}

// Sequence allocates ids from a batch reserved in the KV store. It is safe for
// concurrent use.
type Sequence struct {
	opts  Options
	store kv.Backend
	key   []byte

	mu   sync.Mutex
	next uint64 // next id to hand out
	end  uint64 // exclusive end of the reserved batch
}

// New returns a sequence over store. The store must be the leader's (fenced)
// backend of the current term: a new term needs a new Sequence.
func New(store kv.Backend, opts Options) (*Sequence, error) {
	if opts.Name == "" {
		return nil, fmt.Errorf("sequence: name must not be empty")
	}
	if opts.Step == 0 {
		return nil, fmt.Errorf("sequence %q: step must be > 0", opts.Name)
	}
	if opts.Max != 0 && opts.Start >= opts.Max {
		return nil, fmt.Errorf("sequence %q: start %d must be below max %d", opts.Name, opts.Start, opts.Max)
	}
	if opts.MaxCASAttempts <= 0 {
		opts.MaxCASAttempts = 64
	}
	return &Sequence{opts: opts, store: store, key: []byte(KeyPrefix + opts.Name)}, nil
}

// Next returns the next id.
func (s *Sequence) Next(ctx context.Context) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.next >= s.end {
		if err := s.reserve(ctx); err != nil {
			return 0, err
		}
	}
	id := s.next
	s.next++
	return id, nil
}

// reserve moves the stored counter forward by one step with a CAS and takes
// the ids in between.
func (s *Sequence) reserve(ctx context.Context) error {
	for attempt := 0; attempt < s.opts.MaxCASAttempts; attempt++ {
		cur, expect, err := s.current(ctx)
		if err != nil {
			return err
		}
		limit := uint64(math.MaxUint64)
		if s.opts.Max != 0 {
			limit = s.opts.Max
		}
		if cur >= limit {
			return fmt.Errorf("%w: %q reached %d", ErrExhausted, s.opts.Name, limit)
		}
		end := limit
		if limit-cur > s.opts.Step {
			end = cur + s.opts.Step
		}
		resp, err := s.store.CompareAndPut(ctx, kv.CompareAndPutRequest{Key: s.key, Expect: expect, Value: encode(end)})
		if err != nil {
			return fmt.Errorf("sequence %q: reserve: %w", s.opts.Name, err)
		}
		if resp.Success {
			s.next, s.end = cur, end
			return nil
		}
	}
	return fmt.Errorf("sequence %q: counter kept changing under %d attempts: %w", s.opts.Name, s.opts.MaxCASAttempts, kv.ErrUnavailable)
}

// current reads the counter: the next free id and the bytes to expect in the CAS.
func (s *Sequence) current(ctx context.Context) (uint64, []byte, error) {
	got, err := kv.Get(ctx, s.store, s.key)
	if err != nil {
		return 0, nil, fmt.Errorf("sequence %q: read counter: %w", s.opts.Name, err)
	}
	if got == nil {
		return s.opts.Start, nil, nil
	}
	if len(got.Value) != 8 {
		return 0, nil, fmt.Errorf("sequence %q: counter %q holds %d bytes, want 8 (corrupt)", s.opts.Name, s.key, len(got.Value))
	}
	v := binary.BigEndian.Uint64(got.Value)
	if v < s.opts.Start {
		v = s.opts.Start
	}
	return v, got.Value, nil
}

func encode(v uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, v)
}
