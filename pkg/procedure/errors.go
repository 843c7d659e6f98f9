package procedure

import (
	"errors"
	"fmt"

	"github.com/pgmetasrv/metasrv/pkg/election"
)

var (
	// ErrNotRunning: the manager is stopped (this node does not lead).
	ErrNotRunning = errors.New("procedure: manager is not running")
	// ErrAlreadyRunning: Start on a started manager, or RegisterLoader while started.
	ErrAlreadyRunning = errors.New("procedure: manager is already running")
	// ErrTooManyProcedures: max_running_procedures procedures are running.
	ErrTooManyProcedures = errors.New("procedure: too many running procedures")
	// ErrPaused: the manager is paused and accepts no new procedure.
	ErrPaused = errors.New("procedure: manager is paused")
	// ErrNotFound: no procedure has the id (or its record has been removed).
	ErrNotFound = errors.New("procedure: not found")
	// ErrInvalidArgument is the root of the errors caused by the request itself.
	ErrInvalidArgument = errors.New("procedure: invalid argument")
	// ErrUnknownType: no loader is registered under the type name.
	ErrUnknownType = &childError{parent: ErrInvalidArgument, msg: "unknown procedure type"}
	// ErrStateTooLarge: a procedure's state does not fit in one transaction
	// (max_txn_ops segments of max_metadata_value_size bytes).
	ErrStateTooLarge = &childError{parent: ErrInvalidArgument, msg: "procedure state too large"}
	// ErrCorruptState: a stored procedure record or its data segments do not
	// match (missing segment, wrong length or checksum, undecodable record).
	ErrCorruptState = errors.New("procedure: corrupt stored state")
	// ErrConflict: the stored record changed under the manager: another writer
	// owns the procedure. The procedure stops without rolling back.
	ErrConflict = errors.New("procedure: stored state changed by another writer")
)

type childError struct {
	parent error
	msg    string
}

func (e *childError) Error() string { return "procedure: " + e.msg }
func (e *childError) Unwrap() error { return e.parent }

type retryableError struct{ err error }

func (e *retryableError) Error() string { return e.err.Error() }
func (e *retryableError) Unwrap() error { return e.err }

// Retryable marks err as transient: the step (or rollback) that returned it is
// retried with backoff. Retryable(nil) is nil.
func Retryable(err error) error {
	if err == nil {
		return nil
	}
	return &retryableError{err: err}
}

// CodedError is an error that carries a code its submitter understands (for
// DDL, GreptimeDB's status code, so that "table already exists" reaches a
// frontend as such). The manager keeps the code of the error that rolled a
// procedure back in its record, beside the text: Info.ErrorCode.
type CodedError interface {
	error
	Code() uint32
}

// ErrorCode is the code of the first CodedError in err's chain, 0 if none.
func ErrorCode(err error) uint32 {
	var c CodedError
	if errors.As(err, &c) {
		return c.Code()
	}
	return 0
}

// IsRetryable reports whether err (or an error it wraps) was marked Retryable.
func IsRetryable(err error) bool {
	var r *retryableError
	return errors.As(err, &r)
}

// isFenced reports whether err says that this node may no longer write as
// leader, or that another writer took the procedure: the procedure must stop
// at once, without rollback and without another write.
func isFenced(err error) bool {
	return errors.Is(err, election.ErrFenced) || errors.Is(err, ErrConflict)
}

func invalidArgf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidArgument}, args...)...)
}
