// Package kvpb converts between the key-value types of package kv and their
// protobuf form in metasrv.v1. It is the one place both the server (decoding
// user requests) and the client (decoding server replies) use.
//
// Decoding a request validates what only the protobuf form can get wrong: nil
// messages and enum values that name nothing. Errors wrap
// kv.ErrInvalidArgument and name the field. Key and limit checks (empty keys,
// inverted ranges, max_key_size, max_txn_ops, max_metadata_value_size) stay
// with kv.WithLimits, which wraps every backend the server uses. A negative
// Range limit passes through: it means no limit, as in etcd.
package kvpb

import (
	"fmt"

	metasrvv1 "github.com/pgmetasrv/metasrv/pkg/api/metasrv/v1"
	"github.com/pgmetasrv/metasrv/pkg/kv"
)

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", kv.ErrInvalidArgument, fmt.Sprintf(format, args...))
}

func errNilRequest(what string) error {
	return invalid("%s must be set", what)
}

// KeyValuesToPB converts pairs to their protobuf form.
func KeyValuesToPB(kvs []kv.KeyValue) []*metasrvv1.KeyValue {
	if len(kvs) == 0 {
		return nil
	}
	// One allocation for the messages, not one each.
	msgs := make([]metasrvv1.KeyValue, len(kvs))
	out := make([]*metasrvv1.KeyValue, len(kvs))
	for i, p := range kvs {
		msgs[i].Key, msgs[i].Value = p.Key, p.Value
		out[i] = &msgs[i]
	}
	return out
}

// keyValuesFromPB converts pairs from their protobuf form; field names the
// list in errors. A nil element is refused: it cannot come off the wire, only
// from a caller building messages by hand.
func keyValuesFromPB(field string, kvs []*metasrvv1.KeyValue) ([]kv.KeyValue, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	out := make([]kv.KeyValue, len(kvs))
	for i, p := range kvs {
		if p == nil {
			return nil, invalid("%s[%d] must be set", field, i)
		}
		out[i] = kv.KeyValue{Key: p.GetKey(), Value: p.GetValue()}
	}
	return out, nil
}

// KeyValueToPB converts an optional pair.
func KeyValueToPB(p *kv.KeyValue) *metasrvv1.KeyValue {
	if p == nil {
		return nil
	}
	return &metasrvv1.KeyValue{Key: p.Key, Value: p.Value}
}

// KeyValueFromPB converts an optional pair.
func KeyValueFromPB(p *metasrvv1.KeyValue) *kv.KeyValue {
	if p == nil {
		return nil
	}
	return &kv.KeyValue{Key: p.GetKey(), Value: p.GetValue()}
}

// KeyValuesFromPB converts pairs from a server reply. Replies come from a
// server that never sends nil elements; one that does is skipped rather than
// crashing the client.
func KeyValuesFromPB(kvs []*metasrvv1.KeyValue) []kv.KeyValue {
	if len(kvs) == 0 {
		return nil
	}
	out := make([]kv.KeyValue, 0, len(kvs))
	for _, p := range kvs {
		if p != nil {
			out = append(out, kv.KeyValue{Key: p.GetKey(), Value: p.GetValue()})
		}
	}
	return out
}

// Serializable reports whether a read asks for serializable consistency;
// CONSISTENCY_UNSPECIFIED means linearizable.
func Serializable(c metasrvv1.Consistency) (bool, error) {
	switch c {
	case metasrvv1.Consistency_CONSISTENCY_UNSPECIFIED, metasrvv1.Consistency_CONSISTENCY_LINEARIZABLE:
		return false, nil
	case metasrvv1.Consistency_CONSISTENCY_SERIALIZABLE:
		return true, nil
	default:
		return false, invalid("consistency: unknown value %d, want LINEARIZABLE or SERIALIZABLE", int32(c))
	}
}

// ConsistencyToPB is the wire form of a read's consistency.
func ConsistencyToPB(serializable bool) metasrvv1.Consistency {
	if serializable {
		return metasrvv1.Consistency_CONSISTENCY_SERIALIZABLE
	}
	return metasrvv1.Consistency_CONSISTENCY_LINEARIZABLE
}
