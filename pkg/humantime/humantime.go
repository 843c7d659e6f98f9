// Package humantime reads and writes durations as Rust's humantime crate
// (2.2, which GreptimeDB v1.1.4 pins) does: GreptimeDB writes every
// #[serde(with = "humantime_serde")] duration this way ("1s", "7days",
// "2h 37m"), in instructions, table TTLs and database options.
package humantime

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
)

const nanosPerSec = uint64(time.Second)

// humantime's calendar: a year is 365.25 days, a month 30.44 days.
const (
	humanYear  = 31_557_600
	humanMonth = 2_630_016
	humanDay   = 86_400
)

// Format writes d as humantime's format_duration does: the non-zero
// parts from years down to nanoseconds, space-separated, years, months and
// days spelled out (plural above 1), "0s" for zero.
func Format(d time.Duration) (string, error) {
	if d < 0 {
		return "", fmt.Errorf("negative duration %s: GreptimeDB's Duration is unsigned", d)
	}
	if d == 0 {
		return "0s", nil
	}
	ns := uint64(d)
	secs, sub := ns/nanosPerSec, ns%nanosPerSec
	ydays := secs % humanYear
	mdays := ydays % humanMonth
	daySecs := mdays % humanDay
	parts := []struct {
		n      uint64
		unit   string
		plural bool
	}{
		{secs / humanYear, "year", true},
		{ydays / humanMonth, "month", true},
		{mdays / humanDay, "day", true},
		{daySecs / 3600, "h", false},
		{daySecs % 3600 / 60, "m", false},
		{daySecs % 60, "s", false},
		{sub / 1_000_000, "ms", false},
		{sub / 1000 % 1000, "us", false},
		{sub % 1000, "ns", false},
	}
	var b strings.Builder
	for _, p := range parts {
		if p.n == 0 {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.FormatUint(p.n, 10))
		b.WriteString(p.unit)
		if p.plural && p.n > 1 {
			b.WriteByte('s')
		}
	}
	return b.String(), nil
}

// unitScale is a unit humantime's parse_duration knows, in nanoseconds.
func unitScale(unit string) (uint64, bool) {
	switch unit {
	case "nanos", "nsec", "ns":
		return 1, true
	case "usec", "us", "µs":
		return 1000, true
	case "millis", "msec", "ms":
		return 1_000_000, true
	case "seconds", "second", "secs", "sec", "s":
		return nanosPerSec, true
	case "minutes", "minute", "min", "mins", "m":
		return 60 * nanosPerSec, true
	case "hours", "hour", "hr", "hrs", "h":
		return 3600 * nanosPerSec, true
	case "days", "day", "d":
		return humanDay * nanosPerSec, true
	case "weeks", "week", "wk", "wks", "w":
		return 7 * humanDay * nanosPerSec, true
	case "months", "month", "M":
		return humanMonth * nanosPerSec, true
	case "years", "year", "yr", "yrs", "y":
		return humanYear * nanosPerSec, true
	}
	return 0, false
}

var errDurationOverflow = errors.New("duration: number is too large")

// Parse reads what humantime's parse_duration accepts: spans of a
// number and a unit ("1h 30m", "1h30m", "20 min 17 nsec"), whitespace
// between and inside spans, and a bare "0".
func Parse(s string) (time.Duration, error) {
	if strings.Trim(s, "0") == "" && s != "" {
		return 0, nil
	}
	rest := strings.TrimLeftFunc(s, unicode.IsSpace)
	if rest == "" {
		return 0, errors.New("duration: value was empty")
	}
	var total uint64
	for rest != "" {
		digits := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' })
		if digits == 0 {
			return 0, fmt.Errorf("duration %q: expected a number at offset %d", s, len(s)-len(rest))
		}
		if digits < 0 {
			return 0, fmt.Errorf("duration %q: time unit needed, for example %ssec or %sms", s, rest, rest)
		}
		n, err := strconv.ParseUint(rest[:digits], 10, 64)
		if err != nil {
			return 0, errDurationOverflow
		}
		rest = strings.TrimLeftFunc(rest[digits:], unicode.IsSpace)
		end := strings.IndexFunc(rest, func(r rune) bool { return !isUnitRune(r) })
		if end < 0 {
			end = len(rest)
		}
		unit := rest[:end]
		if unit == "" {
			return 0, fmt.Errorf("duration %q: invalid character at offset %d", s, len(s)-len(rest))
		}
		scale, ok := unitScale(unit)
		if !ok {
			return 0, fmt.Errorf("duration %q: unknown time unit %q, supported units: ns, us/µs, ms, sec, min, hours, days, weeks, months, years", s, unit)
		}
		if n > (math.MaxInt64-total)/scale {
			return 0, errDurationOverflow
		}
		total += n * scale
		rest = strings.TrimLeftFunc(rest[end:], unicode.IsSpace)
	}
	return time.Duration(total), nil
}

func isUnitRune(r rune) bool { return (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || r == 'µ' }
