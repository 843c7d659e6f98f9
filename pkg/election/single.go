package election

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// Single is the elector of a node without an election (memory_store): it
// leads from Start, with term 1, until Stop. Nothing stops a second instance
// from believing the same, hence the warning at Start.
type Single struct {
	info   func() NodeInfo
	logger *slog.Logger
	stream *Stream

	mu        sync.Mutex
	started   bool
	stopped   bool
	electedAt time.Time
}

var _ Elector = (*Single)(nil)

// NewSingle returns a single-node elector. info is called for Leader and
// Candidates, so its resource figures are current.
func NewSingle(info func() NodeInfo, logger *slog.Logger) *Single {
	return &Single{
		info:   info,
		logger: logger.With("component", "election"),
		stream: NewStream(),
	}
}

// Start makes this node leader of term 1.
func (s *Single) Start(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return errors.New("election: Start after Stop")
	}
	if s.started {
		s.logger.Warn("election already started")
		return nil
	}
	s.started = true
	s.logger.Warn("no election service: ensure only one metasrv instance runs against this store")
	s.elect(1)
	return nil
}

// elect leads term with no end to its trust: nobody can take it over.
func (s *Single) elect(term int64) {
	s.electedAt = time.Now()
	s.stream.Elected(term, time.Time{})
	s.logger.Info("elected", "term", term)
}

// Stop ends leadership and closes the streams.
func (s *Single) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return
	}
	s.stopped = true
	s.stream.Close()
}

// Leader is this node while it runs.
func (s *Single) Leader(context.Context) (Leader, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started || s.stopped {
		return Leader{}, ErrNoLeader
	}
	info := s.info()
	return Leader{Addr: info.Addr, Term: s.stream.Lease().Term, ElectedAt: s.electedAt, Info: info}, nil
}

// IsLeader is true between Start and Stop.
func (s *Single) IsLeader() bool { return s.stream.Trusted() != 0 }

// TrustedTerm is the leading term between Start and Stop, else 0.
func (s *Single) TrustedTerm() int64 { return s.stream.Trusted() }

// Candidates is this node alone.
func (s *Single) Candidates(context.Context) ([]NodeInfo, error) {
	return []NodeInfo{s.info()}, nil
}

// Resign steps down and, being the only candidate, wins the next term at
// once, as a lone PostgreSQL elector would after its campaign interval.
func (s *Single) Resign(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started || s.stopped {
		return nil
	}
	term := s.stream.Lease().Term
	s.stream.StepDown(term)
	s.elect(term + 1)
	return nil
}

// Subscribe returns the leadership stream.
func (s *Single) Subscribe() (<-chan LeaderChange, func()) { return s.stream.Subscribe() }

// Term is the leading term, 0 before Start and after Stop.
func (s *Single) Term() int64 { return s.stream.Term() }

// Changes counts the leadership changes.
func (s *Single) Changes() uint64 { return s.stream.Changes() }
