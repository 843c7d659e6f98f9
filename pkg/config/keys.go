package config

import (
	"encoding"
	"reflect"
	"slices"
	"strings"
)

var textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()

// field is one settable key of Options, found through the koanf tags.
type field struct {
	key   string
	index []int
	typ   reflect.Type
}

// leafFields lists the keys of Options in declaration order. Nested structs are
// tables, every other field is a key.
func leafFields() []field {
	var out []field
	var walk func(t reflect.Type, prefix string, index []int)
	walk = func(t reflect.Type, prefix string, index []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("koanf")
			if tag == "" || tag == "-" {
				continue
			}
			idx := append(slices.Clone(index), i)
			if f.Type.Kind() == reflect.Struct && !reflect.PointerTo(f.Type).Implements(textUnmarshalerType) {
				walk(f.Type, prefix+tag+".", idx)
				continue
			}
			out = append(out, field{key: prefix + tag, index: idx, typ: f.Type})
		}
	}
	walk(reflect.TypeFor[Options](), "", nil)
	return out
}

// Keys returns every configuration key this metasrv acts on, e.g.
// "grpc.bind_addr", in declaration order.
func Keys() []string {
	fs := leafFields()
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.key
	}
	return out
}

// unsupported holds keys (or whole tables) of GreptimeDB's MetasrvOptions that
// this metasrv does not act on. Accepting them silently would let an operator
// believe, say, region failover is on; so they are refused with a hint.
func unsupportedHint(key string) (hint string, ok bool) {
	replaced := map[string]string{
		"bind_addr":          "use grpc.bind_addr",
		"server_addr":        "use grpc.server_addr",
		"logging.log_format": "use logging.format",
		// GreptimeDB's TLS mode; here setting cert_path and key_path is what
		// turns TLS on, and ca_cert_path what requires client certificates.
		"grpc.tls.mode":  "TLS is on when grpc.tls.cert_path and grpc.tls.key_path are set",
		"http.tls.mode":  "TLS is on when http.tls.cert_path and http.tls.key_path are set",
		"grpc.tls.watch": "certificates are read at start; restart to load new ones",
		"http.tls.watch": "certificates are read at start; restart to load new ones",
	}
	tables := []string{
		"use_memory_store", "datanode", "enable_telemetry", "data_home", "wal",
		"export_metrics", "flush_stats_factor", "tracing", "memory", "event_recorder",
		"stats_persistence", "runtime",
		"grpc.runtime_size",
		"grpc.flight_compression", "grpc.max_connection_age",
		"http.timeout", "http.enable_cors", "http.cors_allowed_origins",
		"http.prom_validation_mode",
		"logging.dir", "logging.append_stdout", "logging.max_log_files",
		"logging.enable_otlp_tracing", "logging.otlp_endpoint", "logging.otlp_export_protocol",
		"logging.tracing_sample_ratio", "logging.slow_query",
		"backend_tls.watch",
	}
	for name, h := range replaced {
		if key == name || strings.HasPrefix(key, name+".") {
			return h, true
		}
	}
	for _, name := range tables {
		if key == name || strings.HasPrefix(key, name+".") {
			return "", true
		}
	}
	return "", false
}

// suggest returns the known key closest to a misspelt one, or "" if none is
// close enough to be a plausible typo.
func suggest(key string, known []string) string {
	best, bestDist := "", 3
	for _, k := range known {
		if d := editDistance(key, k); d < bestDist {
			best, bestDist = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
