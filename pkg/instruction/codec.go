package instruction

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

var (
	// ErrInvalid is wrapped by every Decode, DecodeReply and message error
	// about JSON GreptimeDB would refuse to read as well: malformed, a field
	// missing or of the wrong type, an unknown variant.
	ErrInvalid = errors.New("instruction: invalid payload")
	// ErrUnsupported is wrapped when the payload names a variant GreptimeDB
	// has but this package does not model (GetFileRefs, Suspend, ...): the
	// JSON may be fine, metasrv just never sends or expects it.
	ErrUnsupported = errors.New("instruction: unsupported variant")
)

// invalid wraps err in ErrInvalid unless it is about an unsupported variant.
func invalid(err error) error {
	if err == nil || errors.Is(err, ErrUnsupported) || errors.Is(err, ErrInvalid) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrInvalid, err)
}

// field is one struct field as serde's derived Deserialize sees it.
type field struct {
	name string
	dst  any
	// optional: #[serde(default)] or an Option; the field may be absent.
	optional bool
	// nullable: an Option; null leaves dst untouched. A defaulted field
	// that is not an Option refuses null, as serde does.
	nullable bool
}

func required(name string, dst any) field { return field{name: name, dst: dst} }
func defaulted(name string, dst any) field {
	return field{name: name, dst: dst, optional: true}
}
func option(name string, dst any) field {
	return field{name: name, dst: dst, optional: true, nullable: true}
}

// decodeObject reads a JSON object into fields with serde's rules: exact
// names, unknown fields ignored, a field without a default present and not
// null. encoding/json alone would match names case-insensitively and take
// null for a zero value.
func decodeObject(typ string, data []byte, fields ...field) error {
	obj, err := object(typ, data)
	if err != nil {
		return err
	}
	return decodeFields(typ, obj, fields...)
}

func object(typ string, data []byte) (map[string]json.RawMessage, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil {
		return nil, fmt.Errorf("%s: want an object: %w", typ, err)
	}
	if obj == nil {
		return nil, fmt.Errorf("%s: null, want an object", typ)
	}
	return obj, nil
}

func decodeFields(typ string, obj map[string]json.RawMessage, fields ...field) error {
	for _, f := range fields {
		raw, ok := obj[f.name]
		if !ok {
			if f.optional {
				continue
			}
			return fmt.Errorf("%s: missing field %q", typ, f.name)
		}
		if isNull(raw) {
			if f.nullable {
				continue
			}
			return fmt.Errorf("%s.%s: null is not allowed", typ, f.name)
		}
		if err := json.Unmarshal(raw, f.dst); err != nil {
			return fmt.Errorf("%s.%s: %w", typ, f.name, err)
		}
	}
	return nil
}

// variant splits an externally tagged enum value, {"Tag": body}.
func variant(typ string, data []byte) (string, json.RawMessage, error) {
	obj, err := object(typ, data)
	if err != nil {
		return "", nil, err
	}
	if len(obj) != 1 {
		return "", nil, fmt.Errorf("%s: want an object with exactly one variant, got %d keys", typ, len(obj))
	}
	for tag, body := range obj {
		return tag, body, nil
	}
	panic("unreachable: one key")
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

// decodeList reads a JSON array element by element with decode, refusing
// null elements (encoding/json would take them as zero values).
func decodeList[T any](typ string, data []byte, decode func([]byte, *T) error) ([]T, error) {
	var raws []json.RawMessage
	if err := json.Unmarshal(data, &raws); err != nil {
		return nil, fmt.Errorf("%s: want an array: %w", typ, err)
	}
	if raws == nil {
		return nil, fmt.Errorf("%s: null, want an array", typ)
	}
	out := make([]T, len(raws))
	for i, raw := range raws {
		if isNull(raw) {
			return nil, fmt.Errorf("%s[%d]: null is not allowed", typ, i)
		}
		if err := decode(raw, &out[i]); err != nil {
			return nil, fmt.Errorf("%s[%d]: %w", typ, i, err)
		}
	}
	return out, nil
}

// unmarshal is json.Unmarshal shaped for decodeList.
func unmarshal[T any](data []byte, dst *T) error { return json.Unmarshal(data, dst) }

// strictList is a []T field decoded with decodeList.
type strictList[T any] struct {
	typ string
	dst *[]T
}

func (l strictList[T]) UnmarshalJSON(data []byte) error {
	out, err := decodeList(l.typ, data, unmarshal[T])
	if err != nil {
		return err
	}
	*l.dst = out
	return nil
}

// stringMap is a HashMap<String, String> field: every value a string.
type stringMap struct{ dst *map[string]string }

func (m stringMap) UnmarshalJSON(data []byte) error {
	var raws map[string]json.RawMessage
	if err := json.Unmarshal(data, &raws); err != nil {
		return err
	}
	if raws == nil {
		return errors.New("null, want an object")
	}
	out := make(map[string]string, len(raws))
	for k, raw := range raws {
		var v string
		if isNull(raw) {
			return fmt.Errorf("key %q: null is not allowed", k)
		}
		if err := json.Unmarshal(raw, &v); err != nil {
			return fmt.Errorf("key %q: %w", k, err)
		}
		out[k] = v
	}
	*m.dst = out
	return nil
}

// encode is json.Marshal without HTML escaping, as serde_json writes; the
// types' MarshalJSON methods use it so nested values are not escaped either.
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
	out := make([]byte, 0, len(tag)+len(b)+5)
	out = append(out, '{')
	out = strconv.AppendQuote(out, tag) // tags are ASCII identifiers
	out = append(out, ':')
	out = append(out, b...)
	return append(out, '}'), nil
}

// nonNil returns s, or an empty slice for nil, so that it is written as [].
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
