package config

import (
	"fmt"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// valueError is a decode failure whose message already says what was expected.
type valueError struct{ msg string }

func (e *valueError) Error() string { return e.msg }

var (
	durationType = reflect.TypeFor[time.Duration]()
	byteSizeType = reflect.TypeFor[ByteSize]()
	stringsType  = reflect.TypeFor[[]string]()
)

// durationHook reads "500ms", "5s", "10m", "24h". A bare number is refused:
// mapstructure would take it as nanoseconds, which is never what was meant.
func durationHook(from, to reflect.Type, data any) (any, error) {
	if to != durationType {
		return data, nil
	}
	s, ok := data.(string)
	if !ok {
		return nil, &valueError{fmt.Sprintf("expected a duration with a unit such as \"500ms\", \"5s\", \"10m\" or \"24h\", got the %s %v", from.Kind(), data)}
	}
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return nil, &valueError{"invalid duration (expected e.g. \"500ms\", \"5s\", \"10m\", \"24h\")"}
	}
	return d, nil
}

// byteSizeHook reads sizes: "1500KiB", "1.5MiB", "512B", or an integer number
// of bytes.
func byteSizeHook(from, to reflect.Type, data any) (any, error) {
	if to != byteSizeType {
		return data, nil
	}
	switch v := data.(type) {
	case string:
		b, err := ParseByteSize(v)
		if err != nil {
			return nil, &valueError{err.Error()}
		}
		return b, nil
	case int64:
		if v < 0 {
			return nil, &valueError{"a size cannot be negative"}
		}
		return ByteSize(v), nil
	case float64:
		return nil, &valueError{fmt.Sprintf("expected an integer number of bytes or a size such as \"1500KiB\", got the floating-point number %s", formatFloat(v))}
	}
	return data, nil
}

// intHook refuses a TOML float for an integer key. mapstructure would
// truncate it (1.5 becomes 1) or accept an exponent (1e3 becomes 1000), which
// hides a mistake; strings (environment, flags) are parsed as integers by
// mapstructure and fail on "1.5" by themselves.
func intHook(from, to reflect.Type, data any) (any, error) {
	k := to.Kind()
	if to == durationType || to == byteSizeType || !(k >= reflect.Int && k <= reflect.Int64 || k >= reflect.Uint && k <= reflect.Uint64) {
		return data, nil
	}
	switch v := data.(type) {
	case float64:
		return nil, &valueError{fmt.Sprintf("expected %s, got the floating-point number %s; write a whole number without a decimal point or exponent", describe(to), formatFloat(v))}
	case float32:
		return nil, &valueError{fmt.Sprintf("expected %s, got the floating-point number %s; write a whole number without a decimal point or exponent", describe(to), formatFloat(float64(v)))}
	}
	return data, nil
}

// formatFloat shows a float as written in TOML (1.5, 1000.0 for 1e3).
func formatFloat(f float64) string {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return fmt.Sprint(f)
	}
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if !strings.ContainsAny(s, ".eE") {
		s += ".0"
	}
	return s
}

// listHook lets a list be written as one comma-separated string (environment
// variables, flags, or a single string in the file).
func listHook(from, to reflect.Type, data any) (any, error) {
	if to != stringsType || from.Kind() != reflect.String {
		return data, nil
	}
	return splitList(data.(string)), nil
}

// newItem matches the start of a new store address: a URL scheme or the first
// keyword of a key=value DSN.
var newItem = regexp.MustCompile(`^\s*([A-Za-z][A-Za-z0-9+.-]*://|[A-Za-z_]+\s*=)`)

// splitList splits a comma-separated list of store addresses. A PostgreSQL
// address may itself contain commas (postgres://h1:5432,h2:5432/db or
// host=h1,h2), so a comma only starts a new item when what follows begins
// like an address (scheme:// or key=); otherwise it belongs to the current one.
func splitList(s string) []string {
	if strings.TrimSpace(s) == "" {
		return []string{}
	}
	var out []string
	for _, part := range strings.Split(s, ",") {
		if len(out) > 0 && !newItem.MatchString(part) {
			out[len(out)-1] += "," + part
			continue
		}
		out = append(out, part)
	}
	for i := range out {
		out[i] = strings.TrimSpace(out[i])
	}
	return out
}

// describe names a field type for "expected ..." messages.
func describe(t reflect.Type) string {
	switch {
	case t == durationType:
		return "a duration such as \"5s\""
	case t == byteSizeType:
		return "a size such as \"1500KiB\""
	case t.Kind() == reflect.Slice:
		return "a list of strings"
	case t.Kind() == reflect.String:
		return "a string"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
		return "an integer"
	case t.Kind() >= reflect.Uint && t.Kind() <= reflect.Uint64:
		return "a non-negative integer"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		return "a number"
	}
	return "a " + t.String()
}
