package chaos

import (
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"
)

// opKind is one of the operations the clients run.
type opKind uint8

const (
	opGet opKind = iota // linearizable Range of one key
	opPut               // Put with PrevKv
	opCAS               // CompareAndPut; Expect "" means "absent"
	opTxn               // Txn: compare value == Expect (or absent), success put, failure get
)

func (k opKind) String() string {
	switch k {
	case opGet:
		return "get"
	case opPut:
		return "put"
	case opCAS:
		return "cas"
	case opTxn:
		return "txn"
	default:
		return fmt.Sprintf("op(%d)", uint8(k))
	}
}

// kvInput is an operation as invoked. Every written value is unique in a
// run, so a value read names the one operation that wrote it.
type kvInput struct {
	Kind   opKind
	Key    string
	Expect string // cas, txn: "" means the key must be absent
	Value  string // put, cas, txn
}

// kvOutput is what the operation returned. Every known output reveals the
// key's whole state at the operation's linearization point (a get's value, a
// put's or cas's previous value, a txn's current value on failure or its
// Expect on success): that is what makes dropping unobserved unknown writes
// sound (see reduce).
type kvOutput struct {
	// Unknown: a write whose outcome is unknown (it may or may not have
	// applied); its Return is +infinity.
	Unknown bool
	// Value is the value observed: get's current value, put's and cas's
	// previous value, txn's current value when it failed; "" is absent.
	Value string
	// OK is whether cas or txn succeeded.
	OK bool
	// Err is the error of an unknown outcome, for the visualisation.
	Err string
}

// absent is how the model writes a missing key; no written value is empty.
const absent = ""

// kvModel is a map of string keys, partitioned per key: every operation
// touches exactly one key, so each key's history is checked on its own.
var kvModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range history {
			k := op.Input.(kvInput).Key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		sort.Strings(keys)
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return absent },
	Step: func(state, input, output any) (bool, any) {
		st, in, out := state.(string), input.(kvInput), output.(kvOutput)
		switch in.Kind {
		case opGet:
			return out.Value == st, st
		case opPut:
			return out.Unknown || out.Value == st, in.Value
		case opCAS, opTxn:
			applies := st == in.Expect
			next := st
			if applies {
				next = in.Value
			}
			if out.Unknown {
				return true, next
			}
			if out.OK != applies {
				return false, st
			}
			if in.Kind == opCAS {
				return out.Value == st, next
			}
			return applies || out.Value == st, next
		default:
			return false, st
		}
	},
	Equal:             func(a, b any) bool { return a.(string) == b.(string) },
	DescribeOperation: describeOp,
	DescribeState: func(state any) string {
		if state.(string) == absent {
			return "<absent>"
		}
		return state.(string)
	},
}

func show(v string) string {
	if v == absent {
		return "<absent>"
	}
	return v
}

func describeOp(input, output any) string {
	in, out := input.(kvInput), output.(kvOutput)
	var call string
	switch in.Kind {
	case opGet:
		call = fmt.Sprintf("get(%s)", in.Key)
	case opPut:
		call = fmt.Sprintf("put(%s, %s)", in.Key, in.Value)
	case opCAS, opTxn:
		call = fmt.Sprintf("%s(%s, %s -> %s)", in.Kind, in.Key, show(in.Expect), in.Value)
	}
	if out.Unknown {
		return call + " -> unknown: " + out.Err
	}
	switch in.Kind {
	case opGet:
		return call + " -> " + show(out.Value)
	case opPut:
		return call + " prev " + show(out.Value)
	case opCAS:
		return fmt.Sprintf("%s -> ok=%t prev %s", call, out.OK, show(out.Value))
	default:
		if out.OK {
			return call + " -> ok"
		}
		return call + " -> failed, current " + show(out.Value)
	}
}

// unknownReturn is the return time of an operation whose outcome is unknown:
// it may take effect at any point after its call, porcupine's way of
// modelling an operation that never returned.
const unknownReturn = math.MaxInt64

// reduce drops the unknown writes whose value nothing ever observed.
//
// Sound because every known output reveals the key's whole state: an
// unknown write W whose value no operation observed can, in any
// linearization, only be followed (before the next write) by other unknown
// operations, so removing W changes no observation; conversely W can always
// be put back at the very end, where it returns (+infinity). An unknown cas
// or txn that is kept (its value was observed, so it applied) observed its
// Expect, hence the fixpoint. The checker would reach the same verdict
// without this step, but each pending unknown write doubles its search.
func reduce(history []porcupine.Operation) (kept []porcupine.Operation, dropped int) {
	observed := map[string]bool{}
	for _, op := range history {
		in, out := op.Input.(kvInput), op.Output.(kvOutput)
		if out.Unknown {
			continue
		}
		observed[out.Value] = true
		if (in.Kind == opCAS || in.Kind == opTxn) && out.OK {
			observed[in.Expect] = true
		}
	}
	for changed := true; changed; {
		changed = false
		for _, op := range history {
			in, out := op.Input.(kvInput), op.Output.(kvOutput)
			if out.Unknown && (in.Kind == opCAS || in.Kind == opTxn) && observed[in.Value] && !observed[in.Expect] {
				observed[in.Expect] = true
				changed = true
			}
		}
	}
	for _, op := range history {
		in, out := op.Input.(kvInput), op.Output.(kvOutput)
		if out.Unknown && !observed[in.Value] {
			dropped++
			continue
		}
		kept = append(kept, op)
	}
	return kept, dropped
}

// keyResult is the verdict on one key's history.
type keyResult struct {
	key     string
	result  porcupine.CheckResult
	info    porcupine.LinearizationInfo
	checked int // operations given to porcupine
	dropped int // unknown writes never observed, left out
}

// checkHistory reduces a history and checks each key on its own, one after
// the other: porcupine's memory grows with the square of a partition's
// length, and checking the partitions one by one (rather than all at once)
// bounds the peak by the longest one. A failing key is also visualised on
// its own, which keeps the HTML readable.
func checkHistory(history []porcupine.Operation, timeout time.Duration) []keyResult {
	var out []keyResult
	for _, part := range kvModel.Partition(history) {
		kept, dropped := reduce(part)
		res, info := porcupine.CheckOperationsVerbose(kvModel, kept, timeout)
		out = append(out, keyResult{
			key: part[0].Input.(kvInput).Key, result: res, info: info,
			checked: len(kept), dropped: dropped,
		})
	}
	return out
}
