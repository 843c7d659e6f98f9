package procedure

import (
	"context"
	"log/slog"
	"time"

	"github.com/pgmetasrv/metasrv/pkg/kv"
)

// ID identifies one procedure: a random (v4) UUID in its canonical text form.
type ID string

// Procedure is one durable multi-step operation: a state machine that the
// manager drives one step at a time and whose state it persists between steps.
//
// Execute and Rollback run at least once per step, not exactly once: a step
// whose result was not persisted before a crash or a leader change runs again
// on the next leader, from the state of the last persisted step. Both must
// therefore be idempotent.
type Procedure interface {
	// Type is the name the procedure's loader is registered under.
	Type() string
	// Execute runs one step. Return Executing to be called again for the next
	// step, Done when finished. An error wrapped with Retryable is retried with
	// backoff; any other error rolls the procedure back. Execute must return
	// promptly once ctx ends (the manager is stopping): the step then runs again
	// on the next leader.
	Execute(ctx context.Context, pc *Context) (Status, error)
	// Dump returns the procedure's state as JSON; the registered loader must
	// rebuild an equivalent procedure from it.
	Dump() ([]byte, error)
	// Rollback undoes what the executed steps did. It runs after a
	// non-retryable error or when retries run out, and again on the next leader
	// if a leader change interrupts it.
	Rollback(ctx context.Context, pc *Context) error
	// LockKeys are the keys the procedure holds from its first step until it
	// is done or rolled back. They must not change over the procedure's life.
	LockKeys() []LockKey
}

// Loader rebuilds a procedure from JSON: the arguments given to Submit, or the
// state Dump returned. An error for bad input should say what was wrong; it is
// returned to the submitter as an ErrInvalidArgument.
type Loader func(data []byte) (Procedure, error)

// Context is what a step gets besides its context.Context.
type Context struct {
	// ID is the procedure's id.
	ID ID
	// Term is the leader term the manager runs in (see StartTerm), 0 when
	// started without one. Leader-only state a step uses (a mailbox, a
	// region keeper) must belong to this term.
	Term int64
	// Step counts the steps completed so far (0 during the first step).
	Step uint64
	// Attempt counts the failed attempts of the current step or rollback
	// (0 on the first try).
	Attempt int
	// Store is the key-value backend of the current leader term (fenced: a
	// write through it fails once this node is deposed). Procedures should make
	// their metadata writes through it.
	Store kv.Backend
	// Logger carries the procedure's id and type.
	Logger *slog.Logger
}

// Status is the outcome of a step that did not fail.
type Status struct {
	done    bool
	persist bool
	output  []byte
}

// Executing means "call Execute again for the next step". With persist the
// manager stores the procedure's Dump before the next step, so a new leader
// resumes after this step; without it a new leader re-runs this step.
func Executing(persist bool) Status { return Status{persist: persist} }

// Done means the procedure finished; output (JSON or nil) is kept in its
// record for Get and Wait.
func Done(output []byte) Status { return Status{done: true, persist: true, output: output} }

// IsDone reports whether s is Done.
func (s Status) IsDone() bool { return s.done }

// Persist reports whether the manager persists the state after the step.
func (s Status) Persist() bool { return s.persist }

// Output is the output of a Done status.
func (s Status) Output() []byte { return s.output }

// LockKey is a key a procedure locks, shared or exclusive. Keys are plain
// names such as "catalog/greptime" or "table/42"; a hierarchy is expressed by
// locking the parent shared and the child exclusive.
type LockKey struct {
	Name      string `json:"name"`
	Exclusive bool   `json:"exclusive,omitempty"`
}

// SharedLock returns a shared lock on name: any number of procedures may hold it.
func SharedLock(name string) LockKey { return LockKey{Name: name} }

// ExclusiveLock returns an exclusive lock on name: its holder runs alone on name.
func ExclusiveLock(name string) LockKey { return LockKey{Name: name, Exclusive: true} }

// State is where a procedure is in its life (see the package documentation for
// the transitions).
type State string

const (
	// StateRunning: executing its steps (or waiting for its locks or for the
	// manager to be resumed).
	StateRunning State = "running"
	// StateRetrying: the last attempt of a step failed with a retryable error;
	// it waits for the next attempt.
	StateRetrying State = "retrying"
	// StateRollingBack: a step failed; Rollback runs (or is retried).
	StateRollingBack State = "rolling_back"
	// StateDone: final, finished successfully.
	StateDone State = "done"
	// StateRolledBack: final, a step failed and Rollback succeeded.
	StateRolledBack State = "rolled_back"
	// StateFailed: final, a step failed and so did Rollback; what the steps did
	// may be half undone and needs an operator (the procedure is poisoned). Its
	// last state is kept for inspection.
	StateFailed State = "failed"
)

// States lists every state, in life order.
var States = []State{StateRunning, StateRetrying, StateRollingBack, StateDone, StateRolledBack, StateFailed}

// Final reports whether a procedure in state s will never change again.
func (s State) Final() bool {
	return s == StateDone || s == StateRolledBack || s == StateFailed
}

func (s State) valid() bool {
	for _, v := range States {
		if s == v {
			return true
		}
	}
	return false
}

// Info is the public view of one procedure, as last persisted.
type Info struct {
	ID    ID
	Type  string
	State State
	// Step counts the completed steps that were persisted.
	Step uint64
	// Error is the error that made the procedure retry, roll back or fail.
	Error string
	// ErrorCode is the code that error carried (see CodedError), 0 if none.
	ErrorCode uint32
	// Output is what the procedure returned with Done.
	Output []byte
	// Data is the procedure's persisted state (its last Dump) when it is
	// kept inline in the record (it fits in max_metadata_value_size) and is
	// at most 64 KiB; nil otherwise (Get and List read no segments).
	Data        []byte
	LockKeys    []LockKey
	SubmittedAt time.Time
	UpdatedAt   time.Time
}
