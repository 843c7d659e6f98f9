package kv

import "errors"

// ErrInvalidArgument is the root of every error caused by the request itself; a
// request failing with it changed nothing, and retrying it unchanged fails again.
var ErrInvalidArgument = errors.New("kv: invalid argument")

var (
	// ErrEmptyKey: a key (or range start) is empty.
	ErrEmptyKey = wrapSentinel(ErrInvalidArgument, "empty key")
	// ErrTooManyTxnOps: a Txn has more compares or operations than max_txn_ops.
	ErrTooManyTxnOps = wrapSentinel(ErrInvalidArgument, "too many operations")
	// ErrValueTooLarge: a value is larger than max_metadata_value_size.
	ErrValueTooLarge = wrapSentinel(ErrInvalidArgument, "value too large")
	// ErrKeyTooLarge: a key is larger than max_key_size.
	ErrKeyTooLarge = wrapSentinel(ErrInvalidArgument, "key too large")
	// ErrInvalidRange: RangeEnd sorts before Key (an inverted range).
	ErrInvalidRange = wrapSentinel(ErrInvalidArgument, "invalid range")
)

// ErrUnavailable means the backend could not be reached or the operation could
// not complete for a transient reason (retries ran out, connection lost). The
// operation may or may not have been applied only when the error also says so
// with ErrOutcomeUnknown.
var ErrUnavailable = errors.New("kv: backend unavailable")

// ErrOutcomeUnknown marks a write whose commit was sent but whose result was
// lost (the connection broke during COMMIT): it may or may not have applied.
var ErrOutcomeUnknown = errors.New("kv: outcome unknown")

type sentinel struct {
	parent error
	msg    string
}

func wrapSentinel(parent error, msg string) error { return &sentinel{parent: parent, msg: msg} }

func (e *sentinel) Error() string { return "kv: " + e.msg }
func (e *sentinel) Unwrap() error { return e.parent }
