package pgelection

import "github.com/pgmetasrv/metasrv/internal/testsignal"

// holderOutcome is what one lock-holder check concluded (see checkHolder).
type holderOutcome int

const (
	holderFree        holderOutcome = iota // nobody holds the lock
	holderUnknown                          // the look-up failed
	holderMember                           // the holder is this cluster's leader
	holderSuspect                          // a non-member, seen for the first time
	holderReported                         // a non-member again: warned
	holderRateLimited                      // a non-member again, warned too recently
)

// registration is one renewal of the candidate registration.
type registration struct {
	// duplicate: the renewal replaced another live process's registration
	// of this address.
	duplicate bool
}

// testSignals let tests wait for the elector's internal events instead of
// polling for their effects. They are no-ops unless a test calls Init before
// Start.
type testSignals struct {
	// Campaigned: a try-lock lost; the session now waits for a NOTIFY (it
	// LISTENs from connect on, so a resignation from now on reaches it).
	Campaigned testsignal.Signal[struct{}]
	// TermBumped: a won lock's term was recorded, before the trust check.
	TermBumped testsignal.Signal[int64]
	// GainedLeadership and LostLeadership carry the term elected or
	// stepped down from, as the stream's Elected and StepDown.
	GainedLeadership testsignal.Signal[int64]
	LostLeadership   testsignal.Signal[int64]
	// Renewed: the leader renewed its lease of the term.
	Renewed testsignal.Signal[int64]
	// Registered: the candidate registration was renewed.
	Registered testsignal.Signal[registration]
	// HolderChecked: a follower looked up who holds the lock.
	HolderChecked testsignal.Signal[holderOutcome]
}

func (ts *testSignals) Init(tb testsignal.TB) {
	ts.Campaigned.Init(tb)
	ts.TermBumped.Init(tb)
	ts.GainedLeadership.Init(tb)
	ts.LostLeadership.Init(tb)
	ts.Renewed.Init(tb)
	ts.Registered.Init(tb)
	ts.HolderChecked.Init(tb)
}
