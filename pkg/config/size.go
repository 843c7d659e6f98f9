package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ByteSize is a size in bytes, written in configuration as "1500KiB",
// "1.5MiB", "512B" or a plain number of bytes.
type ByteSize int64

const (
	B   ByteSize = 1
	KiB          = 1024 * B
	MiB          = 1024 * KiB
	GiB          = 1024 * MiB
	TiB          = 1024 * GiB
)

// sizeUnits are tried largest first when formatting. Unit names are
// case-insensitive; only the 1024-based IEC names are accepted.
var sizeUnits = []struct {
	name string
	size ByteSize
}{
	{"TiB", TiB},
	{"GiB", GiB},
	{"MiB", MiB},
	{"KiB", KiB},
	{"B", B},
}

// ambiguousUnit recognises spellings that mean 1000-based units to some readers and
// 1024-based ones to others (GreptimeDB's ReadableSize reads KB as KiB). They
// are refused rather than guessed, naming the unit to write instead.
func ambiguousUnit(unit string) (iec string, ok bool) {
	switch unit {
	case "k", "kb":
		return "KiB", true
	case "m", "mb":
		return "MiB", true
	case "g", "gb":
		return "GiB", true
	case "t", "tb":
		return "TiB", true
	}
	return "", false
}

// ParseByteSize reads "1500KiB", "1.5MiB", "512B" or "1536000" (bytes).
// Units are B, KiB, MiB, GiB and TiB (1024-based), case-insensitive; KB, MB...
// are refused as ambiguous. The result must be a whole, non-negative number
// of bytes.
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	if num == "" {
		return 0, fmt.Errorf("invalid size %q (expected e.g. 512B, 1500KiB, 1.5MiB or a number of bytes)", s)
	}
	var mult ByteSize
	for _, u := range sizeUnits {
		if unit == strings.ToLower(u.name) {
			mult = u.size
		}
	}
	if unit == "" {
		mult = B
	}
	if mult == 0 {
		if iec, ok := ambiguousUnit(unit); ok {
			return 0, fmt.Errorf("invalid size %q: unit %q is ambiguous (1000- or 1024-based?); use KiB/MiB/GiB/TiB (1024-based), e.g. %s%s", s, t[i:], num, iec)
		}
		return 0, fmt.Errorf("invalid size %q: unknown unit %q (expected B, KiB, MiB, GiB or TiB, 1024-based)", s, t[i:])
	}
	if !strings.Contains(num, ".") {
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil || n > math.MaxInt64/int64(mult) {
			return 0, fmt.Errorf("invalid size %q: out of range", s)
		}
		return ByteSize(n) * mult, nil
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid size %q (expected e.g. 512B, 1500KiB, 1.5MiB or a number of bytes)", s)
	}
	v := f * float64(mult)
	if v >= math.MaxInt64 {
		return 0, fmt.Errorf("invalid size %q: out of range", s)
	}
	if v != math.Trunc(v) {
		return 0, fmt.Errorf("invalid size %q: not a whole number of bytes", s)
	}
	return ByteSize(v), nil
}

// String gives the most readable exact form: the largest unit that shows the
// size with at most two decimals, e.g. 1500KiB, 1.5MiB, 512B.
func (b ByteSize) String() string {
	if b < 0 {
		return strconv.FormatInt(int64(b), 10) + "B"
	}
	for _, u := range sizeUnits {
		if b < u.size {
			continue
		}
		if b%u.size == 0 {
			return strconv.FormatInt(int64(b/u.size), 10) + u.name
		}
		s := strconv.FormatFloat(float64(b)/float64(u.size), 'f', -1, 64)
		if dot := strings.IndexByte(s, '.'); dot >= 0 && len(s)-dot-1 <= 2 {
			if back, err := ParseByteSize(s + u.name); err == nil && back == b {
				return s + u.name
			}
		}
	}
	return strconv.FormatInt(int64(b), 10) + "B"
}

// MarshalText implements encoding.TextMarshaler.
func (b ByteSize) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (b *ByteSize) UnmarshalText(text []byte) error {
	v, err := ParseByteSize(string(text))
	if err != nil {
		return err
	}
	*b = v
	return nil
}
