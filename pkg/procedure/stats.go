package procedure

import "sync"

// Stats is a snapshot for metrics: gauges of this term's procedures and
// counters since New.
type Stats struct {
	// Running is true between Start and Stop.
	Running bool
	// Paused is the manager's copy of the pause switch.
	Paused bool
	// Active counts the unfinished procedures this term drives, by state
	// (running, retrying, rolling_back).
	Active map[State]int
	// WaitingForLocks counts active procedures not yet granted their locks.
	WaitingForLocks int
	// Unloadable counts the unfinished procedures found at Start that could
	// not be resumed (no loader on this node, unreadable state).
	Unloadable int
	// Finished counts the procedures that reached each final state under
	// this manager.
	Finished map[State]uint64
	// Fenced counts procedures stopped because the store refused this node
	// (deposed leader) or another writer took them over.
	Fenced uint64
	// Stalled counts procedures this manager gave up because a state change
	// could not be stored (the store refused the record); they stay as
	// stored and the next leader resumes them.
	Stalled uint64
}

type totals struct {
	mu       sync.Mutex
	finished map[State]uint64
	fenced   uint64
	stalled  uint64
}

func (t *totals) record(final *record, fenced, stalled bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.finished == nil {
		t.finished = make(map[State]uint64)
	}
	if final != nil {
		t.finished[final.State]++
	}
	if fenced {
		t.fenced++
	}
	if stalled {
		t.stalled++
	}
}

// Stats returns the current counts.
func (m *Manager) Stats() Stats {
	s := Stats{Active: make(map[State]int), Finished: make(map[State]uint64)}
	m.totals.mu.Lock()
	for k, v := range m.totals.finished {
		s.Finished[k] = v
	}
	s.Fenced = m.totals.fenced
	s.Stalled = m.totals.stalled
	m.totals.mu.Unlock()
	r, err := m.current()
	if err != nil {
		return s
	}
	s.Running = true
	s.Paused = r.pause.paused()
	s.WaitingForLocks = r.locks.waiting()
	r.mu.Lock()
	defer r.mu.Unlock()
	s.Unloadable = r.unloadable
	for _, e := range r.procs {
		if e != nil {
			s.Active[e.state]++
		}
	}
	return s
}
