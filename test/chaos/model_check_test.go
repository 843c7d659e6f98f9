package chaos

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/kv"
)

// The checker must reject what it exists to catch; these histories are
// small enough to reason about by hand.

func op(process int, call, ret int64, in kvInput, out kvOutput) porcupine.Operation {
	if out.Unknown {
		ret = unknownReturn
	}
	return porcupine.Operation{ClientId: process, Input: in, Output: out, Call: call, Return: ret}
}

func get(key string) kvInput    { return kvInput{Kind: opGet, Key: key} }
func put(key, v string) kvInput { return kvInput{Kind: opPut, Key: key, Value: v} }
func cas(key, expect, v string) kvInput {
	return kvInput{Kind: opCAS, Key: key, Expect: expect, Value: v}
}
func txn(key, expect, v string) kvInput {
	return kvInput{Kind: opTxn, Key: key, Expect: expect, Value: v}
}
func saw(v string) kvOutput                { return kvOutput{Value: v} }
func casOut(ok bool, prev string) kvOutput { return kvOutput{OK: ok, Value: prev} }
func unknown() kvOutput                    { return kvOutput{Unknown: true, Err: "lost"} }

// check returns the worst verdict over the keys of h.
func check(h []porcupine.Operation) porcupine.CheckResult {
	worst := porcupine.Ok
	for _, r := range checkHistory(h, 10*time.Second) {
		if r.result != porcupine.Ok {
			worst = r.result
		}
	}
	return worst
}

func TestModelAcceptsLinearizableHistories(t *testing.T) {
	t.Parallel()
	cases := map[string][]porcupine.Operation{
		"sequential": {
			op(0, 0, 1, put("a", "x"), saw(absent)),
			op(0, 2, 3, get("a"), saw("x")),
			op(0, 4, 5, cas("a", "x", "y"), casOut(true, "x")),
			op(0, 6, 7, cas("a", "x", "z"), casOut(false, "y")),
			op(0, 8, 9, txn("a", "y", "w"), kvOutput{OK: true}),
			op(0, 10, 11, txn("a", "y", "v"), kvOutput{OK: false, Value: "w"}),
			op(0, 12, 13, txn("b", absent, "b1"), kvOutput{OK: true}),
			op(0, 14, 15, cas("c", absent, "c1"), casOut(true, absent)),
		},
		"concurrent read sees either": {
			op(0, 0, 10, put("a", "x"), saw(absent)),
			op(1, 1, 2, get("a"), saw("x")),
			op(2, 3, 4, get("a"), saw("x")),
		},
		"unknown write observed later": {
			op(0, 0, 1, put("a", "x"), unknown()),
			op(1, 5, 6, get("a"), saw("x")),
		},
		"unknown write never observed": {
			op(0, 0, 1, put("a", "x"), saw(absent)),
			op(1, 2, 3, put("a", "lost"), unknown()),
			op(2, 4, 5, get("a"), saw("x")),
		},
		"unknown cas chain": {
			op(0, 0, 1, put("a", "x"), unknown()),
			op(1, 2, 3, cas("a", "x", "z"), unknown()),
			op(2, 4, 5, get("a"), saw("z")),
		},
		"keys are independent": {
			op(0, 0, 1, put("a", "x"), saw(absent)),
			op(1, 2, 3, get("b"), saw(absent)),
		},
		"empty": {},
	}
	for name, h := range cases {
		require.Equal(t, porcupine.Ok, check(h), name)
	}
}

func TestModelRejectsAnomalies(t *testing.T) {
	t.Parallel()
	cases := map[string][]porcupine.Operation{
		"stale read": {
			op(0, 0, 1, put("a", "x"), saw(absent)),
			op(0, 2, 3, put("a", "y"), saw("x")),
			op(1, 4, 5, get("a"), saw("x")),
		},
		"lost acknowledged write": {
			op(0, 0, 1, put("a", "x"), saw(absent)),
			op(1, 2, 3, get("a"), saw(absent)),
		},
		"value from a write that certainly failed (left out of the history)": {
			op(1, 2, 3, get("a"), saw("never")),
		},
		"two cas from absent both succeed": {
			op(0, 0, 1, cas("a", absent, "x"), casOut(true, absent)),
			op(1, 2, 3, cas("a", absent, "y"), casOut(true, absent)),
		},
		"cas fails although it should apply": {
			op(0, 0, 1, put("a", "x"), saw(absent)),
			op(1, 2, 3, cas("a", "x", "y"), casOut(false, "x")),
		},
		"txn failure reports a wrong value": {
			op(0, 0, 1, put("a", "x"), saw(absent)),
			op(1, 2, 3, txn("a", "q", "y"), kvOutput{OK: false, Value: absent}),
		},
		"one bad key among good ones": {
			op(0, 0, 1, put("a", "x"), saw(absent)),
			op(0, 2, 3, put("b", "y"), saw(absent)),
			op(1, 4, 5, get("a"), saw("x")),
			op(1, 6, 7, get("b"), saw(absent)),
		},
		"put reports a wrong previous value": {
			op(0, 0, 1, put("a", "x"), saw(absent)),
			op(1, 2, 3, put("a", "y"), saw(absent)),
		},
		"unknown write seen, then undone": {
			op(0, 0, 1, put("a", "x"), saw(absent)),
			op(1, 2, 3, put("a", "y"), unknown()),
			op(2, 4, 5, get("a"), saw("y")),
			op(2, 6, 7, get("a"), saw("x")),
		},
	}
	for name, h := range cases {
		require.Equal(t, porcupine.Illegal, check(h), name)
	}
}

func TestReduceKeepsWhatWasObserved(t *testing.T) {
	t.Parallel()
	h := []porcupine.Operation{
		op(0, 0, 1, put("a", "seen"), unknown()),
		op(1, 0, 1, put("a", "unseen"), unknown()),
		op(2, 0, 1, cas("a", "seen", "z"), unknown()),
		op(3, 0, 1, txn("a", "nope", "t"), unknown()),
		op(4, 5, 6, get("a"), saw("z")),
	}
	kept, dropped := reduce(h)
	require.Equal(t, 2, dropped)
	var values []string
	for _, o := range kept {
		values = append(values, o.Input.(kvInput).Value)
	}
	require.Equal(t, []string{"seen", "z", ""}, values)
}

func TestClassify(t *testing.T) {
	t.Parallel()
	require.Equal(t, outcomeOK, classify(nil))
	require.Equal(t, outcomeUnknown, classify(fmt.Errorf("commit lost: %w", kv.ErrOutcomeUnknown)))
	require.Equal(t, outcomeFailed, classify(fmt.Errorf("refused: %w", kv.ErrUnavailable)))
	require.Equal(t, outcomeFailed, classify(errors.New("not leader")))
}

func TestHistoryRecordsUnknownWritesOpenEnded(t *testing.T) {
	t.Parallel()
	h := newHistory()
	p := h.newProcess()
	h.record(p, put("a", "x"), kvOutput{}, 1, 2, outcomeUnknown, kv.ErrOutcomeUnknown)
	h.record(p, put("a", "y"), kvOutput{}, 3, 4, outcomeFailed, kv.ErrUnavailable)
	h.record(p, get("a"), kvOutput{}, 5, 6, outcomeFailed, kv.ErrUnavailable)
	h.record(p, get("a"), saw("y"), 7, 8, outcomeOK, nil)
	ops := h.operations()
	require.Len(t, ops, 2, "failed calls are left out, unknown ones kept")
	require.True(t, ops[0].Output.(kvOutput).Unknown)
	require.Equal(t, int64(unknownReturn), ops[0].Return)
	require.Len(t, h.ghostValues(), 1, "y was observed although its write failed")
}
