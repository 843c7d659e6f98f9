package procedure

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/pgmetasrv/metasrv/pkg/kv"
)

// recordFormat is the version of the stored record layout; a record with
// another version is refused rather than misread.
const recordFormat = 1

// record is the stored form of one procedure, under keyspace.meta(id). The
// procedure's data (its Dump) is inline in Data when the whole record fits in
// max_metadata_value_size, otherwise it is in Segments values under
// keyspace.segment(id, Gen, i), and DataLen/DataCRC let a load verify them.
type record struct {
	Format      int             `json:"format"`
	ID          ID              `json:"id"`
	Type        string          `json:"type"`
	State       State           `json:"state"`
	Step        uint64          `json:"step"`
	Error       string          `json:"error,omitempty"`
	ErrorCode   uint32          `json:"error_code,omitempty"`
	Output      []byte          `json:"output,omitempty"`
	LockKeys    []LockKey       `json:"lock_keys,omitempty"`
	SubmittedAt time.Time       `json:"submitted_at"`
	UpdatedAt   time.Time       `json:"updated_at"`
	Data        json.RawMessage `json:"data,omitempty"`
	Gen         uint64          `json:"gen,omitempty"`
	Segments    int             `json:"segments,omitempty"`
	DataLen     int             `json:"data_len,omitempty"`
	DataCRC     uint32          `json:"data_crc,omitempty"`
}

func (r *record) info() Info {
	return Info{
		ID:          r.ID,
		Type:        r.Type,
		State:       r.State,
		Step:        r.Step,
		Error:       r.Error,
		ErrorCode:   r.ErrorCode,
		Output:      bytes.Clone(r.Output),
		Data:        r.inlineData(),
		LockKeys:    append([]LockKey(nil), r.LockKeys...),
		SubmittedAt: r.SubmittedAt,
		UpdatedAt:   r.UpdatedAt,
	}
}

func (r *record) hasData() bool { return r.DataLen > 0 }

// maxInfoData is the largest state Info carries: a list of procedures
// holding states of up to max_metadata_value_size each could otherwise
// outgrow a response.
const maxInfoData = 64 << 10

// inlineData is a copy of the data kept in the record, nil if none is or
// it is over maxInfoData.
func (r *record) inlineData() []byte {
	if r.Segments > 0 || len(r.Data) == 0 || len(r.Data) > maxInfoData {
		return nil
	}
	return bytes.Clone(r.Data)
}

// encodeRecord marshals without HTML escaping, so inline data keeps the exact
// (compacted) bytes Dump produced.
func encodeRecord(r *record) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		return nil, fmt.Errorf("procedure: encode record of %s: %w", r.ID, err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func decodeRecord(key, raw []byte) (*record, error) {
	var r record
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("%w: record %q does not decode: %w", ErrCorruptState, key, err)
	}
	switch {
	case r.Format != recordFormat:
		return nil, fmt.Errorf("%w: record %q has format %d, this version reads format %d", ErrCorruptState, key, r.Format, recordFormat)
	case !r.State.valid():
		return nil, fmt.Errorf("%w: record %q has unknown state %q", ErrCorruptState, key, r.State)
	case r.ID == "" || r.Type == "":
		return nil, fmt.Errorf("%w: record %q has no id or type", ErrCorruptState, key)
	case r.Segments < 0 || r.DataLen < 0:
		return nil, fmt.Errorf("%w: record %q has negative segment count or data length", ErrCorruptState, key)
	}
	return &r, nil
}

// keyspace lays out the manager's keys under its prefix (the pause switch is
// GreptimeDB's, outside it: see pauseKey):
//
//	<prefix>meta/<id>                  the record
//	<prefix>data/<id>/<gen>/<index>    data segments (gen: 16 hex digits, index: 6 digits)
type keyspace struct{ prefix string }

func (k keyspace) metaPrefix() []byte { return []byte(k.prefix + "meta/") }
func (k keyspace) meta(id ID) []byte  { return []byte(k.prefix + "meta/" + string(id)) }
func (k keyspace) data(id ID) []byte  { return []byte(k.prefix + "data/" + string(id) + "/") }

func (k keyspace) gen(id ID, gen uint64) []byte {
	return fmt.Appendf(k.data(id), "%016x/", gen)
}

func (k keyspace) segment(id ID, gen uint64, i int) []byte {
	return fmt.Appendf(k.gen(id, gen), "%06d", i)
}

// idFromMetaKey returns the id in a key under metaPrefix.
func (k keyspace) idFromMetaKey(key []byte) ID {
	return ID(bytes.TrimPrefix(key, k.metaPrefix()))
}

// prefixRange is the range of every key starting with p.
func prefixRange(p []byte) kv.RangeRequest {
	return kv.RangeRequest{Key: p, RangeEnd: kv.PrefixEnd(p)}
}
