package procedure

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/pgmetasrv/metasrv/pkg/kv"
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// recordStore reads and writes procedure records and their data segments.
type recordStore struct {
	b       kv.Backend
	keys    keyspace
	maxVal  int
	maxOps  int
	scanLen int64
}

func newRecordStore(b kv.Backend, o Options) *recordStore {
	return &recordStore{b: b, keys: keyspace{prefix: o.KeyPrefix}, maxVal: o.MaxMetadataValueSize, maxOps: o.MaxTxnOps, scanLen: 256}
}

// stored is a record as it is in the store: raw is the exact stored value,
// which the next write of the record compares against.
type stored struct {
	rec *record
	raw []byte
}

// dataChange says what a write does with the procedure's data.
type dataChange int

const (
	keepData    dataChange = iota // the record keeps pointing at the current data
	replaceData                   // store new data (a new generation if segmented)
	dropData                      // the procedure is finished: forget its data
)

// compactJSON validates data as JSON and returns its compact form.
func compactJSON(id ID, data []byte) ([]byte, error) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, data); err != nil {
		return nil, invalidArgf("state of procedure %s is not valid JSON: %v", id, err)
	}
	return buf.Bytes(), nil
}

// write stores next (with data according to change) in one transaction that
// holds only if the record is still prev (absent when prev is nil). next's
// data fields are filled in. On success it returns the new stored form.
//
// Segmented data goes under a new generation: the transaction puts the new
// segments and flips the record to them, so a reader sees either the old
// record with the old segments or the new record with the new ones. The old
// generation is deleted afterwards; a crash before that leaves unreferenced
// segments, which resume and garbage collection remove.
func (s *recordStore) write(ctx context.Context, prev *stored, next *record, change dataChange, data []byte) (*stored, error) {
	next.Format = recordFormat
	next.Data, next.Gen, next.Segments, next.DataLen, next.DataCRC = nil, 0, 0, 0, 0
	var oldGen []byte
	if prev != nil && prev.rec.Segments > 0 && change != keepData {
		oldGen = s.keys.gen(prev.rec.ID, prev.rec.Gen)
	}
	if prev != nil {
		next.Gen = prev.rec.Gen
	}
	var ops []kv.TxnOp
	switch change {
	case keepData:
		if prev != nil {
			p := prev.rec
			next.Data, next.Gen, next.Segments, next.DataLen, next.DataCRC = p.Data, p.Gen, p.Segments, p.DataLen, p.DataCRC
		}
	case replaceData:
		next.Data, next.DataLen = data, len(data)
		raw, err := encodeRecord(next)
		if err != nil {
			return nil, err
		}
		if len(raw) > s.maxVal {
			next.Data = nil
			next.Gen++
			next.DataCRC = crc32.Checksum(data, crcTable)
			next.Segments = (len(data) + s.maxVal - 1) / s.maxVal
			if next.Segments+1 > s.maxOps {
				return nil, fmt.Errorf("%w: state of procedure %s is %d bytes: it needs %d segments of max_metadata_value_size (%d bytes) plus its record in one transaction, but max_txn_ops is %d (at most %d bytes of state)",
					ErrStateTooLarge, next.ID, len(data), next.Segments, s.maxVal, s.maxOps, (s.maxOps-1)*s.maxVal)
			}
			ops = make([]kv.TxnOp, 0, next.Segments+1)
			for i := range next.Segments {
				seg := data[i*s.maxVal : min((i+1)*s.maxVal, len(data))]
				ops = append(ops, kv.OpPut(s.keys.segment(next.ID, next.Gen, i), seg))
			}
		}
	case dropData:
	}
	raw, err := encodeRecord(next)
	if err != nil {
		return nil, err
	}
	if len(raw) > s.maxVal {
		return nil, fmt.Errorf("%w: record of procedure %s is %d bytes without its data (lock keys, error, output), max_metadata_value_size is %d bytes",
			ErrStateTooLarge, next.ID, len(raw), s.maxVal)
	}
	metaKey := s.keys.meta(next.ID)
	ops = append(ops, kv.OpPut(metaKey, raw))
	cmp := kv.CompareAbsent(metaKey)
	if prev != nil {
		cmp = kv.CompareValue(metaKey, kv.CompareEqual, prev.raw)
	}
	resp, err := s.b.Txn(ctx, kv.TxnRequest{Compare: []kv.Compare{cmp}, Success: ops})
	if err != nil {
		return nil, fmt.Errorf("procedure: persist %s (state %s, step %d): %w", next.ID, next.State, next.Step, err)
	}
	if !resp.Succeeded {
		// An earlier attempt whose outcome was unknown may have applied this
		// very write; anything else means another writer got there.
		cur, err := kv.Get(ctx, s.b, metaKey)
		if err != nil {
			return nil, fmt.Errorf("procedure: persist %s: re-read record after failed compare: %w", next.ID, err)
		}
		if cur == nil || !bytes.Equal(cur.Value, raw) {
			return nil, fmt.Errorf("%w: record of procedure %s is not the one this manager last wrote", ErrConflict, next.ID)
		}
	}
	if oldGen != nil {
		// Cleanup only: failure leaves unreferenced segments for later.
		_, _ = s.b.DeleteRange(ctx, kv.DeleteRangeRequest{Key: oldGen, RangeEnd: kv.PrefixEnd(oldGen)})
	}
	return &stored{rec: next, raw: raw}, nil
}

// get returns the stored record of id, or ErrNotFound.
func (s *recordStore) get(ctx context.Context, id ID) (*stored, error) {
	key := s.keys.meta(id)
	e, err := kv.Get(ctx, s.b, key)
	if err != nil {
		return nil, fmt.Errorf("procedure: read record of %s: %w", id, err)
	}
	if e == nil {
		return nil, fmt.Errorf("%w: no procedure with id %q", ErrNotFound, id)
	}
	rec, err := decodeRecord(key, e.Value)
	if err != nil {
		return nil, err
	}
	return &stored{rec: rec, raw: e.Value}, nil
}

// readData returns the data a record points at, verifying segmented data.
func (s *recordStore) readData(ctx context.Context, rec *record) ([]byte, error) {
	if !rec.hasData() {
		return nil, fmt.Errorf("%w: procedure %s (state %s) has no stored data", ErrCorruptState, rec.ID, rec.State)
	}
	if rec.Segments == 0 {
		if len(rec.Data) != rec.DataLen {
			return nil, fmt.Errorf("%w: inline data of procedure %s is %d bytes, record says %d", ErrCorruptState, rec.ID, len(rec.Data), rec.DataLen)
		}
		return rec.Data, nil
	}
	resp, err := s.b.Range(ctx, prefixRange(s.keys.gen(rec.ID, rec.Gen)))
	if err != nil {
		return nil, fmt.Errorf("procedure: read data segments of %s: %w", rec.ID, err)
	}
	if len(resp.Kvs) != rec.Segments {
		return nil, fmt.Errorf("%w: procedure %s generation %d has %d data segments, record says %d", ErrCorruptState, rec.ID, rec.Gen, len(resp.Kvs), rec.Segments)
	}
	data := make([]byte, 0, rec.DataLen)
	for i, e := range resp.Kvs {
		if want := s.keys.segment(rec.ID, rec.Gen, i); !bytes.Equal(e.Key, want) {
			return nil, fmt.Errorf("%w: procedure %s: segment %d is stored as %q, want %q", ErrCorruptState, rec.ID, i, e.Key, want)
		}
		data = append(data, e.Value...)
	}
	if len(data) != rec.DataLen || crc32.Checksum(data, crcTable) != rec.DataCRC {
		return nil, fmt.Errorf("%w: data of procedure %s generation %d is %d bytes with a different checksum than its record (%d bytes)", ErrCorruptState, rec.ID, rec.Gen, len(data), rec.DataLen)
	}
	return data, nil
}

// removeStaleData deletes every data segment of rec's procedure that rec does
// not reference (left by a crash between a generation flip and its cleanup).
func (s *recordStore) removeStaleData(ctx context.Context, rec *record) error {
	all := s.keys.data(rec.ID)
	ranges := []kv.DeleteRangeRequest{{Key: all, RangeEnd: kv.PrefixEnd(all)}}
	if rec.Segments > 0 {
		cur := s.keys.gen(rec.ID, rec.Gen)
		ranges = []kv.DeleteRangeRequest{{Key: all, RangeEnd: cur}, {Key: kv.PrefixEnd(cur), RangeEnd: kv.PrefixEnd(all)}}
	}
	for _, r := range ranges {
		if _, err := s.b.DeleteRange(ctx, r); err != nil {
			return fmt.Errorf("procedure: remove stale data segments of %s: %w", rec.ID, err)
		}
	}
	return nil
}

// remove deletes a finished procedure: its data first, then its record, so a
// crash in between leaves a record that the next collection removes again.
// The record is only deleted (and true returned) if it is still st.raw.
func (s *recordStore) remove(ctx context.Context, st *stored) (bool, error) {
	data := s.keys.data(st.rec.ID)
	if _, err := s.b.DeleteRange(ctx, kv.DeleteRangeRequest{Key: data, RangeEnd: kv.PrefixEnd(data)}); err != nil {
		return false, fmt.Errorf("procedure: remove data of %s: %w", st.rec.ID, err)
	}
	key := s.keys.meta(st.rec.ID)
	resp, err := s.b.Txn(ctx, kv.TxnRequest{
		Compare: []kv.Compare{kv.CompareValue(key, kv.CompareEqual, st.raw)},
		Success: []kv.TxnOp{kv.OpDelete(key)},
	})
	if err != nil {
		return false, fmt.Errorf("procedure: remove record of %s: %w", st.rec.ID, err)
	}
	return resp.Succeeded, nil
}

// errStopScan ends scan early without an error.
var errStopScan = errors.New("stop scan")

// scan calls fn for every stored record in id order, reading in pages. A
// record that does not decode is passed with its error.
func (s *recordStore) scan(ctx context.Context, fn func(st *stored, err error) error) error {
	prefix := s.keys.metaPrefix()
	req := prefixRange(prefix)
	req.Limit = s.scanLen
	for {
		resp, err := s.b.Range(ctx, req)
		if err != nil {
			return fmt.Errorf("procedure: scan records: %w", err)
		}
		for _, e := range resp.Kvs {
			rec, derr := decodeRecord(e.Key, e.Value)
			var st *stored
			if derr == nil {
				if id := s.keys.idFromMetaKey(e.Key); rec.ID != id {
					derr = fmt.Errorf("%w: record %q holds id %q", ErrCorruptState, e.Key, rec.ID)
				} else {
					st = &stored{rec: rec, raw: e.Value}
				}
			}
			if err := fn(st, derr); err != nil {
				if errors.Is(err, errStopScan) {
					return nil
				}
				return err
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return nil
		}
		req.Key = append(bytes.Clone(resp.Kvs[len(resp.Kvs)-1].Key), 0)
	}
}
