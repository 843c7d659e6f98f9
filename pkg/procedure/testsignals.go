package procedure

import "github.com/pgmetasrv/metasrv/internal/testsignal"

// stepRun is one step that ran to success (not yet persisted).
type stepRun struct {
	ID      ID
	Step    uint64 // the step's index
	Attempt int
}

// persisted is one record write of a procedure's state.
type persisted struct {
	ID    ID
	State State
	Step  uint64
}

// driveEnd is how a procedure's drive on this manager ended.
type driveEnd struct {
	ID ID
	// State is the final state reached, empty when the procedure was
	// abandoned (stopping, fenced, stalled) and left as stored.
	State   State
	Fenced  bool
	Stalled bool
}

// testSignals let tests wait for the manager's internal events instead of
// polling for their effects. They are no-ops unless a test calls Init before
// Start.
type testSignals struct {
	// StepExecuted: a step of a procedure succeeded.
	StepExecuted testsignal.Signal[stepRun]
	// Persisted: a procedure's record was written by its drive.
	Persisted testsignal.Signal[persisted]
	// Held: a procedure stopped before its next step, retry or rollback
	// attempt because the manager is paused.
	Held testsignal.Signal[ID]
	// PauseSwitched: the manager's copy of the pause switch changed.
	PauseSwitched testsignal.Signal[bool]
	// DriveEnded: a procedure's drive ended (finished or abandoned); Stats
	// already count it.
	DriveEnded testsignal.Signal[driveEnd]
	// Collected: a periodic garbage collection removed procedures (count).
	Collected testsignal.Signal[int]
}

func (ts *testSignals) Init(tb testsignal.TB) {
	ts.StepExecuted.Init(tb)
	ts.Persisted.Init(tb)
	ts.Held.Init(tb)
	ts.PauseSwitched.Init(tb)
	ts.DriveEnded.Init(tb)
	ts.Collected.Init(tb)
}
