package procedure

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/kv/memkv"
)

// smallOptions make segments cheap to produce: 1 KiB values, 8 ops a txn.
func smallOptions() Options {
	return Options{RetryDelay: time.Millisecond, MaxRetryTimes: 2, MaxMetadataValueSize: 1024, MaxTxnOps: 8}
}

// limitedStore enforces the same limits as smallOptions, as a real backend would.
func limitedStore() kv.Backend {
	return kv.WithLimits(memkv.New(), kv.Limits{MaxTxnOps: 8, MaxValueSize: 1024})
}

func testRecord(id ID) *record {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	return &record{ID: id, Type: testType, State: StateRunning, SubmittedAt: now, UpdatedAt: now}
}

func jsonBlob(n int) []byte {
	return fmt.Appendf(nil, "%q", blob(n-2))
}

func TestSegmentsRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	b := limitedStore()
	rs := newRecordStore(b, smallOptions().withDefaults())
	id := ID("p1")

	small := []byte(`{"a":1}`)
	st, err := rs.write(ctx, nil, testRecord(id), replaceData, small)
	require.NoError(t, err)
	require.Zero(t, st.rec.Segments, "small data is inline")

	big := jsonBlob(5000)
	st, err = rs.write(ctx, st, testRecord(id), replaceData, big)
	require.NoError(t, err)
	require.Equal(t, 5, st.rec.Segments)
	require.Len(t, keysUnder(t, b, DefaultKeyPrefix+"data/p1/"), 5)
	got, err := rs.get(ctx, id)
	require.NoError(t, err)
	data, err := rs.readData(ctx, got.rec)
	require.NoError(t, err)
	require.Equal(t, big, data)

	// A new generation replaces the old one's segments.
	bigger := jsonBlob(6500)
	st, err = rs.write(ctx, st, testRecord(id), replaceData, bigger)
	require.NoError(t, err)
	require.Equal(t, 7, st.rec.Segments)
	keys := keysUnder(t, b, DefaultKeyPrefix+"data/p1/")
	require.Len(t, keys, 7)
	require.Contains(t, keys[0], fmt.Sprintf("/%016x/", st.rec.Gen))

	// Back to inline: the segments go.
	st, err = rs.write(ctx, st, testRecord(id), replaceData, small)
	require.NoError(t, err)
	require.Empty(t, keysUnder(t, b, DefaultKeyPrefix+"data/p1/"))
	data, err = rs.readData(ctx, st.rec)
	require.NoError(t, err)
	require.Equal(t, small, data)
}

func TestStateTooLarge(t *testing.T) {
	t.Parallel()
	o := smallOptions()
	require.Equal(t, 7*1024, o.MaxStateSize())
	rs := newRecordStore(limitedStore(), o.withDefaults())
	_, err := rs.write(t.Context(), nil, testRecord("p"), replaceData, jsonBlob(7*1024+1))
	require.ErrorIs(t, err, ErrStateTooLarge)
	require.ErrorIs(t, err, ErrInvalidArgument)
	require.ErrorContains(t, err, "max_txn_ops is 8")
	_, err = rs.write(t.Context(), nil, testRecord("p"), replaceData, jsonBlob(7*1024))
	require.NoError(t, err, "exactly the documented maximum fits")
}

func TestCorruptSegmentsAreRefused(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	b := memkv.New()
	rs := newRecordStore(b, smallOptions().withDefaults())
	st, err := rs.write(ctx, nil, testRecord("p"), replaceData, jsonBlob(3000))
	require.NoError(t, err)
	seg := rs.keys.segment("p", st.rec.Gen, 1)

	_, err = b.Put(ctx, kv.PutRequest{Key: seg, Value: []byte("x")})
	require.NoError(t, err)
	_, err = rs.readData(ctx, st.rec)
	require.ErrorIs(t, err, ErrCorruptState)

	_, err = b.BatchDelete(ctx, kv.BatchDeleteRequest{Keys: [][]byte{seg}})
	require.NoError(t, err)
	_, err = rs.readData(ctx, st.rec)
	require.ErrorIs(t, err, ErrCorruptState)
	require.ErrorContains(t, err, "has 2 data segments, record says 3")
}

var errCrash = errors.New("simulated crash")

// tornStore applies a Txn's operations one at a time and "crashes" after
// crashAfter of them: a backend far weaker than the kv contract (which makes
// Txn atomic), to show the segment layout never yields a mixed state even
// then. Writes outside Txn fail while a crash is pending.
type tornStore struct {
	kv.Backend
	crashAfter int
}

func (s *tornStore) Txn(ctx context.Context, req kv.TxnRequest) (kv.TxnResponse, error) {
	for _, c := range req.Compare {
		e, err := kv.Get(ctx, s.Backend, c.Key)
		if err != nil {
			return kv.TxnResponse{}, err
		}
		var v []byte
		if e != nil {
			v = e.Value
		}
		if !c.Holds(v, e != nil) {
			return kv.TxnResponse{}, nil
		}
	}
	for i, op := range req.Success {
		if i == s.crashAfter {
			return kv.TxnResponse{}, errCrash
		}
		var err error
		switch op.Kind {
		case kv.TxnPut:
			_, err = s.Backend.Put(ctx, kv.PutRequest{Key: op.Key, Value: op.Value})
		case kv.TxnDelete:
			_, err = s.Backend.BatchDelete(ctx, kv.BatchDeleteRequest{Keys: [][]byte{op.Key}})
		}
		if err != nil {
			return kv.TxnResponse{}, err
		}
	}
	if len(req.Success) == s.crashAfter {
		return kv.TxnResponse{}, errCrash // applied, but the reply is lost
	}
	return kv.TxnResponse{Succeeded: true}, nil
}

func (s *tornStore) DeleteRange(context.Context, kv.DeleteRangeRequest) (kv.DeleteRangeResponse, error) {
	return kv.DeleteRangeResponse{}, errCrash
}

func TestCrashBetweenWritesNeverYieldsMixedState(t *testing.T) {
	t.Parallel()
	o := smallOptions().withDefaults()
	transitions := []struct {
		name     string
		old, new []byte
	}{
		{"segments to more segments", jsonBlob(3000), jsonBlob(4500)},
		{"segments to fewer segments", jsonBlob(5000), jsonBlob(1500)},
		{"segments to inline", jsonBlob(3000), []byte(`{"small":true}`)},
		{"inline to segments", []byte(`{"small":true}`), jsonBlob(3000)},
	}
	for _, tr := range transitions {
		t.Run(tr.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			for crashAfter := 0; crashAfter <= 8; crashAfter++ {
				base := memkv.New()
				old, err := newRecordStore(base, o).write(ctx, nil, testRecord("p"), replaceData, tr.old)
				require.NoError(t, err)
				next := testRecord("p")
				next.Step = 1
				_, werr := newRecordStore(&tornStore{Backend: base, crashAfter: crashAfter}, o).write(ctx, old, next, replaceData, tr.new)

				rs := newRecordStore(base, o)
				st, err := rs.get(ctx, "p")
				require.NoError(t, err)
				data, err := rs.readData(ctx, st.rec)
				require.NoError(t, err, "crash after %d ops", crashAfter)
				switch st.rec.Step {
				case 0:
					require.Error(t, werr)
					require.Equal(t, tr.old, data, "crash after %d ops: old record, old data", crashAfter)
				case 1:
					require.Equal(t, tr.new, data, "crash after %d ops: new record, new data", crashAfter)
				}
				// Resume removes what the crash left behind.
				require.NoError(t, rs.removeStaleData(ctx, st.rec))
				require.Len(t, keysUnder(t, base, DefaultKeyPrefix+"data/"), st.rec.Segments)
				data, err = rs.readData(ctx, st.rec)
				require.NoError(t, err)
				require.Len(t, data, st.rec.DataLen)
			}
		})
	}
}

func TestLargeStateThroughManager(t *testing.T) {
	t.Parallel()
	h := newHarness()
	store := limitedStore()
	m := startManager(t, smallOptions(), store, h)

	// Grows past one value after step 1; done after step 3.
	id := submit(t, m, testArgs{Label: "big", Steps: 3, Blob: blob(10), GrowAt: 1, GrowTo: 4000})
	info := wait(t, m, id)
	require.Equal(t, StateDone, info.State)
	require.Empty(t, keysUnder(t, store, DefaultKeyPrefix+"data/"), "done procedures drop their data")

	// Too large from the start: refused, nothing stored.
	_, err := m.Submit(t.Context(), testType, args(t, testArgs{Label: "huge", Steps: 1, Blob: blob(8000)}))
	require.ErrorIs(t, err, ErrStateTooLarge)
	require.Len(t, keysUnder(t, store, DefaultKeyPrefix+"meta/"), 1)

	// Growing too large during a step rolls the procedure back.
	id = submit(t, m, testArgs{Label: "grows", Steps: 3, GrowAt: 1, GrowTo: 8000})
	info = wait(t, m, id)
	require.Equal(t, StateRolledBack, info.State)
	require.Contains(t, info.Error, "procedure state too large")
	require.Equal(t, 1, h.rollbacksOf("grows"))
}
