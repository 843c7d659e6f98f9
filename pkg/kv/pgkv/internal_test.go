package pgkv

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/kv"
)

func TestJudge(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	serialization := &pgconn.PgError{Severity: "ERROR", SeverityUnlocalized: "ERROR", Code: "40001"}
	deadlock := &pgconn.PgError{Severity: "ERROR", Code: "40P01"}
	undefinedTable := &pgconn.PgError{Severity: "ERROR", Code: "42P01"}
	cancelled := &pgconn.PgError{Severity: "ERROR", Code: "57014"}
	terminated := &pgconn.PgError{Severity: "FATAL", SeverityUnlocalized: "FATAL", Code: "57P01"}
	notSent := &notSentError{err: errors.New("dial: connection refused")}

	type want struct {
		retry          bool
		unavailable    bool
		outcomeUnknown bool
	}
	cases := []struct {
		name string
		kind opKind
		err  error
		want want
	}{
		{"serialization failure", txOp, serialization, want{retry: true}},
		{"deadlock in autocommit", writeOp, deadlock, want{retry: true}},
		{"serialization failure at commit", txOp, &commitError{err: serialization}, want{retry: true}},
		{"stale snapshot", writeOp, errStaleSnapshot, want{retry: true}},
		{"statement error", writeOp, undefinedTable, want{}},
		{"statement cancelled", txOp, cancelled, want{unavailable: true}},
		{"read on a dead connection", readOp, io.ErrUnexpectedEOF, want{retry: true}},
		{"read on a terminated session", readOp, terminated, want{retry: true}},
		{"write before sending", writeOp, notSent, want{retry: true}},
		{"write after sending", writeOp, io.ErrUnexpectedEOF, want{unavailable: true, outcomeUnknown: true}},
		{"write terminated", writeOp, terminated, want{unavailable: true, outcomeUnknown: true}},
		{"txn statement on a dead connection", txOp, io.ErrUnexpectedEOF, want{unavailable: true}},
		{"commit on a dead connection", txOp, &commitError{err: io.ErrUnexpectedEOF}, want{unavailable: true, outcomeUnknown: true}},
		{"commit rolled back", txOp, &commitError{err: pgx.ErrTxCommitRollback}, want{}},
	}
	for _, c := range cases {
		retry, final := judge(ctx, "op", c.kind, c.err)
		require.Equal(t, c.want.retry, retry, c.name)
		if retry {
			continue
		}
		require.ErrorIs(t, final, c.err, c.name)
		require.ErrorContains(t, final, "pgkv: op: ", c.name)
		require.Equal(t, c.want.unavailable, errors.Is(final, kv.ErrUnavailable), "%s: unavailable: %v", c.name, final)
		require.Equal(t, c.want.outcomeUnknown, errors.Is(final, kv.ErrOutcomeUnknown), "%s: outcome unknown: %v", c.name, final)
	}

	// Once the context has ended, nothing is retried and its error shows.
	done, cancel := context.WithCancel(ctx)
	cancel()
	retry, final := judge(done, "op", readOp, io.ErrUnexpectedEOF)
	require.False(t, retry)
	require.ErrorIs(t, final, context.Canceled)
}

func TestBackoffIsCappedAndJittered(t *testing.T) {
	t.Parallel()
	s := &Store{opts: Options{BaseBackoff: time.Millisecond, MaxBackoff: 8 * time.Millisecond}}
	for n := 1; n < 40; n++ {
		limit := min(time.Millisecond<<min(n-1, 10), 8*time.Millisecond)
		for range 50 {
			d := s.backoff(n)
			require.GreaterOrEqual(t, d, time.Duration(0))
			require.Less(t, d, limit, "attempt %d", n)
		}
	}
}

func TestDedupeLastWins(t *testing.T) {
	t.Parallel()
	keys, values := dedupeLastWins([]kv.KeyValue{
		{Key: []byte("b"), Value: []byte("1")},
		{Key: []byte("a"), Value: []byte("2")},
		{Key: []byte("b"), Value: []byte("3")},
		{Key: []byte("c"), Value: nil},
		{Key: []byte("b"), Value: []byte("4")},
	})
	require.Equal(t, [][]byte{[]byte("a"), []byte("b"), []byte("c")}, keys)
	require.Equal(t, [][]byte{[]byte("2"), []byte("4"), {}}, values, "last value wins; nil becomes empty, never NULL")
}

func TestCASOutcome(t *testing.T) {
	t.Parallel()
	k := []byte("k")
	absent := kv.CompareAndPutRequest{Key: k, Value: []byte("new")}
	present := kv.CompareAndPutRequest{Key: k, Expect: []byte("old"), Value: []byte("new")}
	cases := []struct {
		name    string
		req     kv.CompareAndPutRequest
		applied bool
		current []byte
		want    kv.CompareAndPutResponse
		stale   bool
	}{
		{"created", absent, true, nil, kv.CompareAndPutResponse{Success: true}, false},
		{"exists", absent, false, []byte("x"), kv.CompareAndPutResponse{PrevKv: &kv.KeyValue{Key: k, Value: []byte("x")}}, false},
		{"exists with empty value", absent, false, []byte{}, kv.CompareAndPutResponse{PrevKv: &kv.KeyValue{Key: k, Value: []byte{}}}, false},
		{"inserted after snapshot", absent, false, nil, kv.CompareAndPutResponse{}, true},
		{"swapped", present, true, []byte("old"), kv.CompareAndPutResponse{Success: true, PrevKv: &kv.KeyValue{Key: k, Value: []byte("old")}}, false},
		{"differs", present, false, []byte("x"), kv.CompareAndPutResponse{PrevKv: &kv.KeyValue{Key: k, Value: []byte("x")}}, false},
		{"missing", present, false, nil, kv.CompareAndPutResponse{}, false},
		{"changed after snapshot", present, false, []byte("old"), kv.CompareAndPutResponse{}, true},
	}
	for _, c := range cases {
		got, err := casOutcome(c.req, c.applied, c.current)
		if c.stale {
			require.ErrorIs(t, err, errStaleSnapshot, c.name)
			continue
		}
		require.NoError(t, err, c.name)
		require.Equal(t, c.want, got, c.name)
	}
}

func TestEvalTxnAppliesOpsInOrder(t *testing.T) {
	t.Parallel()
	current := map[string][]byte{"a": []byte("1"), "d": []byte("4")}
	resp, putKeys, putValues, delKeys := evalTxn(kv.TxnRequest{
		Compare: []kv.Compare{kv.CompareValue([]byte("a"), kv.CompareEqual, []byte("1")), kv.CompareAbsent([]byte("b"))},
		Success: []kv.TxnOp{
			kv.OpPut([]byte("b"), []byte("2")),
			kv.OpGet([]byte("b")),
			kv.OpDelete([]byte("a")),
			kv.OpGet([]byte("a")),
			kv.OpDelete([]byte("missing")),
			kv.OpPut([]byte("c"), []byte("3")),
			kv.OpDelete([]byte("c")),
		},
		Failure: []kv.TxnOp{kv.OpGet([]byte("a"))},
	}, current)
	require.True(t, resp.Succeeded)
	require.Equal(t, []kv.TxnOpResponse{
		{Kind: kv.TxnPut},
		{Kind: kv.TxnGet, Kvs: []kv.KeyValue{{Key: []byte("b"), Value: []byte("2")}}},
		{Kind: kv.TxnDelete, Kvs: []kv.KeyValue{{Key: []byte("a"), Value: []byte("1")}}, Deleted: 1},
		{Kind: kv.TxnGet},
		{Kind: kv.TxnDelete},
		{Kind: kv.TxnPut},
		{Kind: kv.TxnDelete, Kvs: []kv.KeyValue{{Key: []byte("c"), Value: []byte("3")}}, Deleted: 1},
	}, resp.Responses)
	require.Equal(t, [][]byte{[]byte("b")}, putKeys)
	require.Equal(t, [][]byte{[]byte("2")}, putValues)
	require.Equal(t, [][]byte{[]byte("a"), []byte("c")}, delKeys, "d untouched")
}
