package main

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/pgmetasrv/metasrv/pkg/kv"
)

// display renders bytes for a terminal. Printable UTF-8 is shown as it is;
// anything a reader could misread or a terminal could interpret (control
// bytes, invalid UTF-8, an empty or space-padded string, or one that starts
// with a quote and so would look escaped) is shown Go-quoted.
func display(b []byte) string {
	s := string(b)
	if s == "" || !utf8.ValidString(s) || s[0] == '"' || strings.TrimSpace(s) != s {
		return strconv.Quote(s)
	}
	for _, r := range s {
		if !strconv.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}

// jsonKV is a key (and value) in -o json output: the *_b64 fields always,
// the plain strings only when the bytes are valid UTF-8 (JSON strings cannot
// carry other bytes losslessly).
type jsonKV struct {
	Key      *string `json:"key,omitempty"`
	KeyB64   string  `json:"key_b64"`
	Value    *string `json:"value,omitempty"`
	ValueB64 *string `json:"value_b64,omitempty"`
}

func utf8Field(b []byte) *string {
	if !utf8.Valid(b) {
		return nil
	}
	s := string(b)
	return &s
}

func jsonKey(key []byte) jsonKV {
	return jsonKV{Key: utf8Field(key), KeyB64: base64.StdEncoding.EncodeToString(key)}
}

func jsonPair(p kv.KeyValue, withValue bool) jsonKV {
	out := jsonKey(p.Key)
	if withValue {
		out.Value = utf8Field(p.Value)
		b64 := base64.StdEncoding.EncodeToString(p.Value)
		out.ValueB64 = &b64
	}
	return out
}

// writeJSON prints v as indented JSON, leaving <, > and & readable.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
