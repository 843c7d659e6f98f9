package election

import (
	"sync"
	"time"
)

// Stream is a node's one record of its own leadership, and the fan-out of
// its changes to subscribers.
//
// The record is which term this node leads (or last led) and until when it
// trusts that it still does. Electors write it (Elected, Renew, StepDown) and
// everything else reads it (Trusted, Lease): there is no second copy to fall
// out of step, so a fence check, a response header and the leader cache all
// judge by the same term and the same trust window.
//
// The stream keeps the order invariant itself (StepDown{t} only after
// Elected{t}, no two Elected in a row), and gives every subscriber its own
// unbounded queue and delivery goroutine, so a slow subscriber never loses a
// message and never blocks the elector that publishes.
//
// The zero value is not usable; use NewStream.
type Stream struct {
	mu      sync.Mutex
	leading bool
	term    int64 // the term led, or last led
	// trustUntil ends the trust window of the leading term; zero means the
	// term is trusted until it steps down (an elector without a lease).
	trustUntil time.Time
	changes    uint64
	closed     bool
	subs       map[*subscriber]struct{}
}

// Lease is a snapshot of the record.
type Lease struct {
	// Leading is true from Elected to StepDown, whatever the trust window.
	Leading bool
	// Term is the term led, or last led (0: never led).
	Term int64
	// TrustUntil ends the trust window; zero while leading means no end.
	TrustUntil time.Time
}

// Trusted reports whether the lease leads and its trust window holds at now.
func (l Lease) Trusted(now time.Time) bool {
	return l.Leading && (l.TrustUntil.IsZero() || now.Before(l.TrustUntil))
}

// NewStream returns an open stream in the follower state.
func NewStream() *Stream {
	return &Stream{subs: make(map[*subscriber]struct{})}
}

// Elected records that this node leads term, trusted until trustUntil (zero:
// until StepDown), and publishes Elected{term}. If the stream still believes
// an earlier term leads, that term's StepDown goes out first. It reports
// false (and records and publishes nothing) once the stream is closed.
func (s *Stream) Elected(term int64, trustUntil time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	if s.leading {
		if s.term == term {
			s.trustUntil = trustUntil
			return true
		}
		s.publishLocked(LeaderChange{Kind: StepDown, Term: s.term})
	}
	s.leading, s.term, s.trustUntil = true, term, trustUntil
	s.publishLocked(LeaderChange{Kind: Elected, Term: term})
	return true
}

// Renew moves the trust window of term to until. It reports false, and
// changes nothing, when term does not lead or its window has already ended:
// a lapsed window is not revived, the elector must step down instead.
func (s *Stream) Renew(term int64, until time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.leading || s.term != term || !s.leaseLocked().Trusted(time.Now()) {
		return false
	}
	s.trustUntil = until
	return true
}

// Trusted is the term this node leads if it trusts its leadership at the
// moment of the call, else 0.
func (s *Stream) Trusted() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.leaseLocked().Trusted(time.Now()) {
		return 0
	}
	return s.term
}

// Lease snapshots the record.
func (s *Stream) Lease() Lease {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.leaseLocked()
}

func (s *Stream) leaseLocked() Lease {
	return Lease{Leading: s.leading, Term: s.term, TrustUntil: s.trustUntil}
}

// StepDown publishes StepDown{term} if term is the one leading, and reports
// whether it did. Stepping down from a term twice publishes once.
func (s *Stream) StepDown(term int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.leading || s.term != term {
		return false
	}
	s.leading, s.trustUntil = false, time.Time{}
	s.publishLocked(LeaderChange{Kind: StepDown, Term: term})
	return true
}

// Term is the leading term, 0 when none leads.
func (s *Stream) Term() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.leading {
		return 0
	}
	return s.term
}

// Changes counts the changes published so far.
func (s *Stream) Changes() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changes
}

func (s *Stream) publishLocked(c LeaderChange) {
	s.changes++
	for sub := range s.subs {
		sub.push(c)
	}
}

// Subscribe returns a new subscriber's channel and its cancel function.
// After Close, the channel delivers what was queued and is then closed.
// Cancel ends delivery at once and closes the channel; calling it again is
// harmless. A subscriber must either drain its channel or cancel, otherwise
// its delivery goroutine waits for it.
func (s *Stream) Subscribe() (<-chan LeaderChange, func()) {
	sub := &subscriber{
		wake: make(chan struct{}, 1),
		done: make(chan struct{}),
		out:  make(chan LeaderChange),
	}
	s.mu.Lock()
	if s.leading {
		sub.queue = append(sub.queue, LeaderChange{Kind: Elected, Term: s.term})
	}
	if s.closed {
		sub.closed = true
	} else {
		s.subs[sub] = struct{}{}
	}
	s.mu.Unlock()

	go sub.run()
	var once sync.Once
	cancel := func() {
		once.Do(func() {
			s.mu.Lock()
			delete(s.subs, sub)
			s.mu.Unlock()
			close(sub.done)
		})
	}
	return sub.out, cancel
}

// Close steps down the leading term, if any, and closes every subscriber's
// channel once it has delivered its queue. Later publications are dropped.
func (s *Stream) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if s.leading {
		s.leading, s.trustUntil = false, time.Time{}
		s.publishLocked(LeaderChange{Kind: StepDown, Term: s.term})
	}
	s.closed = true
	for sub := range s.subs {
		sub.close()
	}
	clear(s.subs)
}

type subscriber struct {
	mu     sync.Mutex
	queue  []LeaderChange
	closed bool
	wake   chan struct{}
	done   chan struct{}
	out    chan LeaderChange
}

func (sub *subscriber) push(c LeaderChange) {
	sub.mu.Lock()
	sub.queue = append(sub.queue, c)
	sub.mu.Unlock()
	sub.signal()
}

func (sub *subscriber) close() {
	sub.mu.Lock()
	sub.closed = true
	sub.mu.Unlock()
	sub.signal()
}

func (sub *subscriber) signal() {
	select {
	case sub.wake <- struct{}{}:
	default:
	}
}

func (sub *subscriber) run() {
	defer close(sub.out)
	for {
		sub.mu.Lock()
		if len(sub.queue) == 0 {
			closed := sub.closed
			sub.mu.Unlock()
			if closed {
				return
			}
			select {
			case <-sub.wake:
				continue
			case <-sub.done:
				return
			}
		}
		next := sub.queue[0]
		sub.queue[0] = LeaderChange{}
		sub.queue = sub.queue[1:]
		sub.mu.Unlock()

		select {
		case sub.out <- next:
		case <-sub.done:
			return
		}
	}
}
