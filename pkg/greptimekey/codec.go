package greptimekey

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrInvalidValue is the root of every error about a value that GreptimeDB
// could not read either (or that we could not write so that it can).
var ErrInvalidValue = errors.New("greptimekey: invalid value")

// Decode reads a value of one of the package's types (LeaseValue, NodeInfo,
// StatValue, NodeAddressValue, ...): greptimekey.Decode[greptimekey.NodeInfo](b).
// Unlike json.Unmarshal, which reports malformed JSON as a *json.SyntaxError
// before the type's decoder runs, every error it returns wraps ErrInvalidValue.
func Decode[T any, P interface {
	*T
	json.Unmarshaler
}](data []byte) (T, error) {
	var v T
	if err := P(&v).UnmarshalJSON(data); err != nil {
		var zero T
		return zero, err
	}
	return v, nil
}

// fieldError is a decoding failure at a field path. Nested decoders return
// it, and each enclosing one prefixes its field name, so the error that
// reaches the caller names the outermost type and the whole path.
type fieldError struct {
	typ     string // the outermost type decoded
	path    string // dotted field path inside it; empty: the value itself
	missing bool   // the field at path is absent
	err     error  // the cause, nil when missing
}

func (e *fieldError) Error() string {
	switch {
	case e.missing:
		return fmt.Sprintf("greptimekey: invalid %s: missing field %q", e.typ, e.path)
	case e.path == "":
		return fmt.Sprintf("greptimekey: invalid %s: %v", e.typ, e.err)
	default:
		return fmt.Sprintf("greptimekey: invalid %s: field %q: %v", e.typ, e.path, e.err)
	}
}

func (e *fieldError) Unwrap() []error {
	if e.err == nil {
		return []error{ErrInvalidValue}
	}
	return []error{ErrInvalidValue, e.err}
}

// within re-roots err (from decoding field name of typ) at typ.
func within(typ, name string, err error) error {
	var fe *fieldError
	if errors.As(err, &fe) {
		path := name
		switch {
		case fe.path == "":
		case strings.HasPrefix(fe.path, "["):
			path = name + fe.path
		default:
			path = name + "." + fe.path
		}
		return &fieldError{typ: typ, path: path, missing: fe.missing, err: fe.err}
	}
	return &fieldError{typ: typ, path: name, err: err}
}

// field describes one struct field for decodeObject, in serde's terms.
type field struct {
	name string
	dst  any
	// optional: #[serde(default)] (or an Option, which serde also lets be
	// absent): a missing field leaves dst as it is.
	optional bool
	// nullable: an Option; null leaves dst as it is.
	nullable bool
}

func required(name string, dst any) field { return field{name: name, dst: dst} }
func optional(name string, dst any) field { return field{name: name, dst: dst, optional: true} }
func option(name string, dst any) field {
	return field{name: name, dst: dst, optional: true, nullable: true}
}

// decodeObject decodes a JSON object into fields as serde's derived
// Deserialize does: names match exactly, unknown fields are ignored, a field
// without a default must be present, null is refused except for an Option.
func decodeObject(typ string, data []byte, fields ...field) error {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil {
		return &fieldError{typ: typ, err: err}
	}
	if obj == nil {
		return &fieldError{typ: typ, err: errors.New("null, want an object")}
	}
	for _, f := range fields {
		raw, ok := obj[f.name]
		if !ok {
			if f.optional {
				continue
			}
			return &fieldError{typ: typ, path: f.name, missing: true}
		}
		if isNull(raw) {
			if f.nullable {
				continue
			}
			return &fieldError{typ: typ, path: f.name, err: errors.New("null is not allowed")}
		}
		if err := json.Unmarshal(raw, f.dst); err != nil {
			return within(typ, f.name, err)
		}
	}
	return nil
}

// decodeVariant splits an externally tagged enum value, {"Variant": body},
// into its tag and body.
func decodeVariant(typ string, data []byte) (string, json.RawMessage, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil {
		return "", nil, &fieldError{typ: typ, err: fmt.Errorf("want an object with one variant: %w", err)}
	}
	if len(obj) != 1 {
		return "", nil, &fieldError{typ: typ, err: fmt.Errorf("want an object with exactly one variant, got %d keys", len(obj))}
	}
	var tag string
	var body json.RawMessage
	for tag, body = range obj { // the one entry
	}
	return tag, body, nil
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

// encode is json.Marshal without HTML escaping, as serde_json writes. Every
// MarshalJSON here uses it, so the bytes of nested values are not escaped
// either when the outermost is written with Encode.
func encode(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// encodeVariant writes an externally tagged enum value, {"tag": body}.
func encodeVariant(tag string, body any) ([]byte, error) {
	b, err := encode(body)
	if err != nil {
		return nil, err
	}
	var out strings.Builder
	out.WriteString(`{`)
	out.WriteString(strconv.Quote(tag)) // tags are ASCII identifiers
	out.WriteString(`:`)
	out.Write(b)
	out.WriteString(`}`)
	return []byte(out.String()), nil
}

// workloads is the proto's DatanodeWorkloads / FrontendWorkloads /
// FlownodeWorkloads message as serde writes it: {"types":[..]}, the list
// required on reading.
type workloads []int32

func (w workloads) MarshalJSON() ([]byte, error) {
	types := []int32(w)
	if types == nil {
		types = []int32{}
	}
	return encode(struct {
		Types []int32 `json:"types"`
	}{types})
}

func (w *workloads) UnmarshalJSON(data []byte) error {
	var types []int32
	if err := decodeObject("workloads", data, required("types", &types)); err != nil {
		return err
	}
	*w = workloads(types)
	return nil
}

// list decodes a JSON array into *dst element by element, so that an error
// names the element's index: "region_stats[2].role".
type list[T any] struct{ dst *[]T }

func listOf[T any](dst *[]T) *list[T] { return &list[T]{dst: dst} }

func (l *list[T]) UnmarshalJSON(data []byte) error {
	var raws []json.RawMessage
	if err := json.Unmarshal(data, &raws); err != nil {
		return err
	}
	if raws == nil {
		return errors.New("null, want an array")
	}
	out := make([]T, len(raws))
	for i, raw := range raws {
		if err := json.Unmarshal(raw, &out[i]); err != nil {
			return within("", "["+strconv.Itoa(i)+"]", err)
		}
	}
	*l.dst = out
	return nil
}

// nonNil returns s, or an empty slice for nil, so that it is written as [].
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
