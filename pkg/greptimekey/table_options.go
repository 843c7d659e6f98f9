package greptimekey

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"
)

// TableOptions is table's TableOptions (table/requests.rs), written
// {"write_buffer_size":null,"ttl":null,"skip_wal":false,"extra_options":{}};
// every field may be missing on reading.
type TableOptions struct {
	// WriteBufferSize is the memtable size in bytes, nil for none. It is
	// written as common_base's ReadableSize writes it ("4MiB", or a bare
	// number when not a whole number of KiB) and read in any form that
	// ReadableSize reads ("4MB", "1.5 GiB", 4194304).
	WriteBufferSize *uint64
	// TTL is common_time's TimeToLive as written: "instant", "forever" or
	// a humantime duration such as "14days"; empty for none (null).
	TTL string
	// SkipWAL makes the table's regions write no WAL (noop WAL options).
	SkipWAL bool
	// ExtraOptions are the other table options, such as "append_mode" or
	// "storage".
	ExtraOptions map[string]string
}

func (o TableOptions) MarshalJSON() ([]byte, error) {
	var size json.RawMessage // null
	if o.WriteBufferSize != nil {
		size = readableSizeJSON(*o.WriteBufferSize)
	}
	var ttl *string
	if o.TTL != "" {
		ttl = &o.TTL
	}
	return encode(struct {
		WriteBufferSize json.RawMessage   `json:"write_buffer_size"`
		TTL             *string           `json:"ttl"`
		SkipWAL         bool              `json:"skip_wal"`
		ExtraOptions    map[string]string `json:"extra_options"`
	}{size, ttl, o.SkipWAL, nonNilMap(o.ExtraOptions)})
}

func (o *TableOptions) UnmarshalJSON(data []byte) error {
	const typ = "TableOptions"
	out := TableOptions{ExtraOptions: map[string]string{}}
	var size *readableSize
	var ttl *string
	if err := decodeObject(typ, data,
		option("write_buffer_size", &size),
		option("ttl", &ttl),
		optional("skip_wal", &out.SkipWAL),
		optional("extra_options", &out.ExtraOptions),
	); err != nil {
		return err
	}
	if size != nil {
		n := uint64(*size)
		out.WriteBufferSize = &n
	}
	if ttl != nil {
		if *ttl == "" {
			// humantime does not parse an empty duration.
			return &fieldError{typ: typ, path: "ttl", err: errors.New("empty time to live")}
		}
		out.TTL = *ttl
	}
	*o = out
	return nil
}

// RegionOptions are the options GreptimeDB copies from the table into each
// __dn_table value's region_options (HashMap::from(&TableOptions)):
// write_buffer_size in ReadableSize's display form ("4.0MiB"), ttl, and the
// extra options, which win over both. skip_wal is not among them.
func (o TableOptions) RegionOptions() map[string]string {
	out := make(map[string]string, len(o.ExtraOptions)+2)
	if o.WriteBufferSize != nil {
		out["write_buffer_size"] = FormatReadableSize(*o.WriteBufferSize)
	}
	if o.TTL != "" {
		// TimeToLive displays as humantime formats, which is also how serde
		// wrote TTL.
		out["ttl"] = o.TTL
	}
	for k, v := range o.ExtraOptions {
		out[k] = v
	}
	return out
}

// Binary units of common_base's ReadableSize.
const (
	kib uint64 = 1 << (10 * (iota + 1))
	mib
	gib
	tib
	pib
)

// readableSizeJSON is ReadableSize's Serialize: whole units as "{n}{unit}"
// (the largest unit that divides the size; 0 is "0KiB"), other sizes as a
// number.
func readableSizeJSON(n uint64) json.RawMessage {
	if n == 0 {
		return json.RawMessage(`"0KiB"`)
	}
	for _, u := range []struct {
		size uint64
		name string
	}{{pib, "PiB"}, {tib, "TiB"}, {gib, "GiB"}, {mib, "MiB"}, {kib, "KiB"}} {
		if n%u.size == 0 {
			return json.RawMessage(`"` + strconv.FormatUint(n/u.size, 10) + u.name + `"`)
		}
	}
	return json.RawMessage(strconv.FormatUint(n, 10))
}

// FormatReadableSize is ReadableSize's Display: one decimal in the largest
// unit not above the size ("4.0MiB", "1.5GiB"), bytes below 1KiB ("512B").
func FormatReadableSize(n uint64) string {
	for _, u := range []struct {
		size uint64
		name string
	}{{pib, "PiB"}, {tib, "TiB"}, {gib, "GiB"}, {mib, "MiB"}, {kib, "KiB"}} {
		if n >= u.size {
			return strconv.FormatFloat(float64(n)/float64(u.size), 'f', 1, 64) + u.name
		}
	}
	return strconv.FormatUint(n, 10) + "B"
}

// readableSize reads ReadableSize as its Deserialize does: a non-negative
// integer, or a string that its FromStr parses.
type readableSize uint64

func (s *readableSize) UnmarshalJSON(data []byte) error {
	if len(data) > 0 && data[0] == '"' {
		var text string
		if err := json.Unmarshal(data, &text); err != nil {
			return err
		}
		n, err := parseReadableSize(text)
		if err != nil {
			return err
		}
		*s = readableSize(n)
		return nil
	}
	var n uint64
	if err := json.Unmarshal(data, &n); err != nil {
		return fmt.Errorf("want a size: %w", err)
	}
	*s = readableSize(n)
	return nil
}

// parseReadableSize is ReadableSize's FromStr: a decimal number (digits,
// '.', exponent, sign) then a unit of B, K, KB, KiB, ... P, PB, PiB or none,
// all binary; the product is truncated, and saturates, to a u64.
func parseReadableSize(s string) (uint64, error) {
	text := strings.TrimFunc(s, unicode.IsSpace)
	if text == "" {
		return 0, fmt.Errorf("%q is not a valid size", s)
	}
	for i := 0; i < len(text); i++ {
		if text[i] >= 0x80 {
			return 0, fmt.Errorf("ASCII string is expected, but got %q", s)
		}
	}
	split := strings.IndexFunc(text, func(r rune) bool {
		return (r < '0' || r > '9') && !strings.ContainsRune(".eE-+", r)
	})
	if split < 0 {
		split = len(text)
	}
	var unit uint64
	switch strings.TrimFunc(text[split:], unicode.IsSpace) {
	case "K", "KB", "KiB":
		unit = kib
	case "M", "MB", "MiB":
		unit = mib
	case "G", "GB", "GiB":
		unit = gib
	case "T", "TB", "TiB":
		unit = tib
	case "P", "PB", "PiB":
		unit = pib
	case "B", "":
		unit = 1
	default:
		return 0, fmt.Errorf("only B, KB, KiB, MB, MiB, GB, GiB, TB, TiB, PB, and PiB are supported: %q", s)
	}
	f, err := strconv.ParseFloat(text[:split], 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) { // Rust parses an overflow as infinity
		return 0, fmt.Errorf("invalid size string: %q", s)
	}
	// Rust's float-to-integer cast saturates (NaN is 0); Go's is undefined
	// out of range.
	switch v := f * float64(unit); {
	case math.IsNaN(v) || v <= 0:
		return 0, nil
	case v >= math.MaxUint64:
		return math.MaxUint64, nil
	default:
		return uint64(v), nil
	}
}
