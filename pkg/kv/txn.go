package kv

import (
	"bytes"
	"fmt"
)

// CompareOp is the relation a Compare checks between a key's current value and
// its target.
type CompareOp int

const (
	CompareEqual CompareOp = iota
	CompareNotEqual
	CompareLess
	CompareGreater
)

func (op CompareOp) String() string {
	switch op {
	case CompareEqual:
		return "="
	case CompareNotEqual:
		return "!="
	case CompareLess:
		return "<"
	case CompareGreater:
		return ">"
	default:
		return fmt.Sprintf("CompareOp(%d)", int(op))
	}
}

// Compare is one condition of a Txn. The key's current value is compared with
// Target using Op. Values are ordered as GreptimeDB orders Option<Vec<u8>>: an
// absent key sorts before every present value, present values compare bytewise.
// With TargetAbsent set, the target is "no value", which turns the compare into
// an existence check: Equal holds when the key is absent, NotEqual (or Greater)
// when it exists.
type Compare struct {
	Key          []byte
	Op           CompareOp
	Target       []byte
	TargetAbsent bool
}

// CompareValue builds a value compare.
func CompareValue(key []byte, op CompareOp, target []byte) Compare {
	return Compare{Key: key, Op: op, Target: target}
}

// CompareExists holds when key is present.
func CompareExists(key []byte) Compare {
	return Compare{Key: key, Op: CompareNotEqual, TargetAbsent: true}
}

// CompareAbsent holds when key is absent.
func CompareAbsent(key []byte) Compare {
	return Compare{Key: key, Op: CompareEqual, TargetAbsent: true}
}

// Holds evaluates the compare against the key's current state.
func (c Compare) Holds(value []byte, present bool) bool {
	var cmp int
	switch {
	case !present && c.TargetAbsent:
		cmp = 0
	case !present:
		cmp = -1
	case c.TargetAbsent:
		cmp = 1
	default:
		cmp = bytes.Compare(value, c.Target)
	}
	switch c.Op {
	case CompareEqual:
		return cmp == 0
	case CompareNotEqual:
		return cmp != 0
	case CompareLess:
		return cmp < 0
	case CompareGreater:
		return cmp > 0
	default:
		return false
	}
}

// TxnOpKind says what a TxnOp does.
type TxnOpKind int

const (
	TxnPut TxnOpKind = iota
	TxnGet
	TxnDelete
)

func (k TxnOpKind) String() string {
	switch k {
	case TxnPut:
		return "put"
	case TxnGet:
		return "get"
	case TxnDelete:
		return "delete"
	default:
		return fmt.Sprintf("TxnOpKind(%d)", int(k))
	}
}

// TxnOp is one operation of a Txn branch, on a single key.
type TxnOp struct {
	Kind  TxnOpKind
	Key   []byte
	Value []byte // TxnPut only
}

func OpPut(key, value []byte) TxnOp { return TxnOp{Kind: TxnPut, Key: key, Value: value} }
func OpGet(key []byte) TxnOp        { return TxnOp{Kind: TxnGet, Key: key} }
func OpDelete(key []byte) TxnOp     { return TxnOp{Kind: TxnDelete, Key: key} }

// TxnRequest is an atomic if/then/else over keys. Operations in a branch apply
// in order, so a Get after a Put of the same key sees the new value.
type TxnRequest struct {
	Compare []Compare
	Success []TxnOp
	Failure []TxnOp
}

// TxnOpResponse is the result of one TxnOp, in the order of the branch taken.
type TxnOpResponse struct {
	Kind TxnOpKind
	// Kvs holds, for TxnGet, the pair if the key exists; for TxnPut and
	// TxnDelete, the previous pair if the key existed.
	Kvs []KeyValue
	// Deleted is 1 for a TxnDelete that removed a key, else 0.
	Deleted int64
}

type TxnResponse struct {
	// Succeeded is true when every compare held and Success was applied.
	Succeeded bool
	Responses []TxnOpResponse
}
