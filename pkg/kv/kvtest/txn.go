package kvtest

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/kv"
)

func txnCases() []testCase {
	return []testCase{
		{"CompareValue", testTxnCompareValue},
		{"CompareAbsentKey", testTxnCompareAbsentKey},
		{"CompareExistence", testTxnCompareExistence},
		{"CompareEmptyValue", testTxnCompareEmptyValue},
		{"AllComparesMustHold", testTxnAllCompares},
		{"SuccessBranch", testTxnSuccessBranch},
		{"FailureBranch", testTxnFailureBranch},
		{"OpsApplyInOrder", testTxnOpsInOrder},
		{"ComparesSeeStateBeforeOps", testTxnComparesBeforeOps},
		{"NoOps", testTxnNoOps},
	}
}

func txn(t *testing.T, b kv.Backend, req kv.TxnRequest) kv.TxnResponse {
	t.Helper()
	resp, err := b.Txn(t.Context(), req)
	require.NoError(t, err)
	return resp
}

// holds runs a Txn with the single compare c and reports whether it held.
func holds(t *testing.T, b kv.Backend, c kv.Compare) bool {
	t.Helper()
	return txn(t, b, kv.TxnRequest{Compare: []kv.Compare{c}}).Succeeded
}

func testTxnCompareValue(t *testing.T, b kv.Backend) {
	put(t, b, "k", "m")
	for _, tc := range []struct {
		op     kv.CompareOp
		target string
		want   bool
	}{
		{kv.CompareEqual, "m", true},
		{kv.CompareEqual, "n", false},
		{kv.CompareEqual, "", false},
		{kv.CompareNotEqual, "m", false},
		{kv.CompareNotEqual, "n", true},
		{kv.CompareLess, "n", true}, // value < target
		{kv.CompareLess, "m", false},
		{kv.CompareLess, "l", false},
		{kv.CompareLess, "m\x00", true}, // a prefix sorts first
		{kv.CompareGreater, "l", true},
		{kv.CompareGreater, "m", false},
		{kv.CompareGreater, "\xff", false},
		{kv.CompareGreater, "", true},
	} {
		require.Equal(t, tc.want, holds(t, b, kv.CompareValue([]byte("k"), tc.op, []byte(tc.target))), `"m" %s %q`, tc.op, tc.target)
	}
}

// An absent key sorts before every value (GreptimeDB's Option ordering).
func testTxnCompareAbsentKey(t *testing.T, b kv.Backend) {
	for _, tc := range []struct {
		op   kv.CompareOp
		want bool
	}{
		{kv.CompareEqual, false},
		{kv.CompareNotEqual, true},
		{kv.CompareLess, true},
		{kv.CompareGreater, false},
	} {
		require.Equal(t, tc.want, holds(t, b, kv.CompareValue([]byte("absent"), tc.op, []byte("x"))), "absent %s \"x\"", tc.op)
		require.Equal(t, tc.want, holds(t, b, kv.CompareValue([]byte("absent"), tc.op, []byte{})), "absent %s \"\"", tc.op)
	}
}

func testTxnCompareExistence(t *testing.T, b kv.Backend) {
	put(t, b, "here", "v")
	put(t, b, "empty", "")
	require.True(t, holds(t, b, kv.CompareExists([]byte("here"))))
	require.True(t, holds(t, b, kv.CompareExists([]byte("empty"))), "an empty value exists")
	require.False(t, holds(t, b, kv.CompareExists([]byte("gone"))))
	require.False(t, holds(t, b, kv.CompareAbsent([]byte("here"))))
	require.False(t, holds(t, b, kv.CompareAbsent([]byte("empty"))))
	require.True(t, holds(t, b, kv.CompareAbsent([]byte("gone"))))
}

func testTxnCompareEmptyValue(t *testing.T, b kv.Backend) {
	put(t, b, "empty", "")
	require.True(t, holds(t, b, kv.CompareValue([]byte("empty"), kv.CompareEqual, []byte{})), `"" = ""`)
	require.True(t, holds(t, b, kv.CompareValue([]byte("empty"), kv.CompareEqual, nil)), `"" = nil target`)
	require.False(t, holds(t, b, kv.CompareValue([]byte("absent"), kv.CompareEqual, []byte{})), "absent is not the empty value")
	require.True(t, holds(t, b, kv.CompareValue([]byte("empty"), kv.CompareLess, []byte("a"))))
}

func testTxnAllCompares(t *testing.T, b kv.Backend) {
	put(t, b, "a", "1")
	put(t, b, "b", "2")
	ok := kv.CompareValue([]byte("a"), kv.CompareEqual, []byte("1"))
	bad := kv.CompareValue([]byte("b"), kv.CompareEqual, []byte("9"))
	require.True(t, holds(t, b, ok))
	require.True(t, txn(t, b, kv.TxnRequest{Compare: []kv.Compare{ok, kv.CompareExists([]byte("b"))}}).Succeeded)
	require.False(t, txn(t, b, kv.TxnRequest{Compare: []kv.Compare{ok, bad}}).Succeeded)
	require.False(t, txn(t, b, kv.TxnRequest{Compare: []kv.Compare{bad, ok}}).Succeeded)
	require.True(t, txn(t, b, kv.TxnRequest{}).Succeeded, "no compares: the success branch")
}

// mixedBranch returns put/get/delete ops whose responses are checked by
// requireMixedResponses; both branches use it with different keys.
func mixedBranch(p string) []kv.TxnOp {
	return []kv.TxnOp{
		kv.OpPut([]byte(p+"new"), []byte("n")),
		kv.OpPut([]byte(p+"old"), []byte("o2")),
		kv.OpGet([]byte(p + "old")),
		kv.OpGet([]byte(p + "missing")),
		kv.OpDelete([]byte(p + "del")),
		kv.OpDelete([]byte(p + "missing")),
		kv.OpGet([]byte(p + "del")),
	}
}

func requireMixedResponses(t *testing.T, p string, rs []kv.TxnOpResponse) {
	t.Helper()
	require.Len(t, rs, 7)
	kinds := make([]kv.TxnOpKind, len(rs))
	for i, r := range rs {
		kinds[i] = r.Kind
	}
	require.Equal(t, []kv.TxnOpKind{kv.TxnPut, kv.TxnPut, kv.TxnGet, kv.TxnGet, kv.TxnDelete, kv.TxnDelete, kv.TxnGet}, kinds)
	require.Empty(t, rs[0].Kvs, "put of a new key has no previous pair")
	require.Equal(t, []pair{{p + "old", "o1"}}, pairsOf(rs[1].Kvs), "put reports the previous pair")
	require.Equal(t, []pair{{p + "old", "o2"}}, pairsOf(rs[2].Kvs), "get sees the put before it")
	require.Empty(t, rs[3].Kvs, "get of a missing key")
	require.Equal(t, []pair{{p + "del", "d"}}, pairsOf(rs[4].Kvs), "delete reports the deleted pair")
	require.EqualValues(t, 1, rs[4].Deleted)
	require.Empty(t, rs[5].Kvs)
	require.EqualValues(t, 0, rs[5].Deleted, "deleting a missing key")
	require.Empty(t, rs[6].Kvs, "get sees the delete before it")
	for _, i := range []int{0, 1, 2, 3, 6} {
		require.Zero(t, rs[i].Deleted)
	}
}

func seedMixed(t *testing.T, b kv.Backend, p string) {
	t.Helper()
	put(t, b, p+"old", "o1")
	put(t, b, p+"del", "d")
}

func testTxnSuccessBranch(t *testing.T, b kv.Backend) {
	seedMixed(t, b, "s/")
	seedMixed(t, b, "f/")
	resp := txn(t, b, kv.TxnRequest{
		Compare: []kv.Compare{kv.CompareValue([]byte("s/old"), kv.CompareEqual, []byte("o1"))},
		Success: mixedBranch("s/"),
		Failure: mixedBranch("f/"),
	})
	require.True(t, resp.Succeeded)
	requireMixedResponses(t, "s/", resp.Responses)
	require.Equal(t, []pair{{"f/del", "d"}, {"f/old", "o1"}, {"s/new", "n"}, {"s/old", "o2"}}, dump(t, b), "only the success branch applied")
}

func testTxnFailureBranch(t *testing.T, b kv.Backend) {
	seedMixed(t, b, "s/")
	seedMixed(t, b, "f/")
	resp := txn(t, b, kv.TxnRequest{
		Compare: []kv.Compare{kv.CompareAbsent([]byte("s/old"))},
		Success: mixedBranch("s/"),
		Failure: mixedBranch("f/"),
	})
	require.False(t, resp.Succeeded)
	requireMixedResponses(t, "f/", resp.Responses)
	require.Equal(t, []pair{{"f/new", "n"}, {"f/old", "o2"}, {"s/del", "d"}, {"s/old", "o1"}}, dump(t, b), "only the failure branch applied")
}

func testTxnOpsInOrder(t *testing.T, b kv.Backend) {
	resp := txn(t, b, kv.TxnRequest{Success: []kv.TxnOp{
		kv.OpPut([]byte("k"), []byte("1")),
		kv.OpPut([]byte("k"), []byte("2")),
		kv.OpGet([]byte("k")),
		kv.OpDelete([]byte("k")),
		kv.OpGet([]byte("k")),
		kv.OpPut([]byte("k"), []byte("3")),
		kv.OpPut([]byte("e"), nil),
		kv.OpGet([]byte("e")),
	}})
	require.True(t, resp.Succeeded)
	require.Len(t, resp.Responses, 8)
	require.Empty(t, resp.Responses[0].Kvs)
	require.Equal(t, []pair{{"k", "1"}}, pairsOf(resp.Responses[1].Kvs))
	require.Equal(t, []pair{{"k", "2"}}, pairsOf(resp.Responses[2].Kvs))
	require.Equal(t, []pair{{"k", "2"}}, pairsOf(resp.Responses[3].Kvs))
	require.EqualValues(t, 1, resp.Responses[3].Deleted)
	require.Empty(t, resp.Responses[4].Kvs)
	require.Empty(t, resp.Responses[5].Kvs, "the key was deleted before this put")
	require.Equal(t, []pair{{"e", ""}}, pairsOf(resp.Responses[7].Kvs), "an empty value put in a txn is present")
	require.Equal(t, []pair{{"e", ""}, {"k", "3"}}, dump(t, b))
}

func testTxnComparesBeforeOps(t *testing.T, b kv.Backend) {
	put(t, b, "k", "1")
	resp := txn(t, b, kv.TxnRequest{
		Compare: []kv.Compare{
			kv.CompareValue([]byte("k"), kv.CompareEqual, []byte("1")),
			kv.CompareAbsent([]byte("n")),
		},
		Success: []kv.TxnOp{kv.OpPut([]byte("k"), []byte("2")), kv.OpPut([]byte("n"), []byte("x"))},
	})
	require.True(t, resp.Succeeded, "compares are evaluated once, before any op")
	requireValue(t, b, "k", "2")
	requireValue(t, b, "n", "x")
}

func testTxnNoOps(t *testing.T, b kv.Backend) {
	put(t, b, "k", "1")
	resp := txn(t, b, kv.TxnRequest{Compare: []kv.Compare{kv.CompareExists([]byte("k"))}})
	require.True(t, resp.Succeeded)
	require.Empty(t, resp.Responses)
	resp = txn(t, b, kv.TxnRequest{Compare: []kv.Compare{kv.CompareAbsent([]byte("k"))}})
	require.False(t, resp.Succeeded)
	require.Empty(t, resp.Responses)
	require.Equal(t, []pair{{"k", "1"}}, dump(t, b))
}
