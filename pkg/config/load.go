package config

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/parsers/toml/v2"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/providers/posflag"
	"github.com/knadh/koanf/v2"
	gotoml "github.com/pelletier/go-toml/v2"
	"github.com/spf13/pflag"

	"github.com/pgmetasrv/metasrv/pkg/postgres"
	"github.com/pgmetasrv/metasrv/pkg/selector"
)

// EnvPrefix starts every environment variable that sets a key:
// METASRV_GRPC__BIND_ADDR sets grpc.bind_addr ("__" separates tables).
const EnvPrefix = "METASRV_"

// EnvReservedPrefix starts environment variables that belong to tooling, not
// to the server's configuration (METASRV_TEST_PG_DSN of the test harness), so
// the strict environment check leaves them alone.
const EnvReservedPrefix = "METASRV_TEST_"

// Kinds of configuration errors, for errors.Is.
var (
	ErrUnknownKey     = errors.New("unknown configuration key")
	ErrUnsupportedKey = errors.New("configuration key not supported")
	ErrInvalidValue   = errors.New("invalid configuration value")
	ErrSource         = errors.New("unreadable configuration source")
)

// Error is a configuration problem. Its message is one line naming the key,
// what was wrong and, when known, where the value came from.
type Error struct {
	// Key is the configuration key at fault, e.g. "grpc.bind_addr"; empty when
	// a whole source is unreadable.
	Key  string
	kind error
	msg  string
}

func (e *Error) Error() string { return "config: " + e.msg }

// Unwrap gives the kind (ErrUnknownKey, ErrUnsupportedKey, ErrInvalidValue, ErrSource).
func (e *Error) Unwrap() error { return e.kind }

// layer is one configuration source: its values by flat key and, per key, a
// phrase saying where that value came from.
type layer struct {
	k      *koanf.Koanf
	origin func(key string) string
	// text is set for sources that only hold strings (environment, flags),
	// whose values are converted to the key's type; a file's values must
	// already have the right TOML type.
	text bool
}

// Load builds the effective Options: Default() overridden by the TOML file at
// path (if path is not empty), then by METASRV_ variables in environ, then by
// the flags of flags that were set on the command line (see AddFlags; flags
// may be nil). It does not validate: call Options.Validate.
//
// Every key of the file and the environment must be one this metasrv acts on;
// a misspelt key and a GreptimeDB key that is not supported here are errors.
func Load(path string, flags *pflag.FlagSet, environ []string) (Options, error) {
	var layers []layer
	if path != "" {
		l, err := fileLayer(path)
		if err != nil {
			return Options{}, err
		}
		layers = append(layers, l)
	}
	l, err := envLayer(environ)
	if err != nil {
		return Options{}, err
	}
	layers = append(layers, l)
	if flags != nil {
		l, err := flagLayer(flags)
		if err != nil {
			return Options{}, err
		}
		layers = append(layers, l)
	}

	o := Default()
	fields := leafFields()
	for _, l := range layers {
		if err := apply(&o, fields, l); err != nil {
			return Options{}, err
		}
	}
	// libpq's spellings (verify-full) become the canonical ones (verify_full);
	// an unknown mode is left for Validate to report.
	if mode, ok := postgres.CanonicalTLSMode(o.BackendTLS.Mode); ok {
		o.BackendTLS.Mode = mode
	}
	// GreptimeDB's variant names (LoadBased) become the key's spelling
	// (load_based) likewise.
	if kind, err := selector.ParseKind(o.Selector); err == nil {
		o.Selector = string(kind)
	}
	return o, nil
}

func fileLayer(path string) (layer, error) {
	k := koanf.New(".")
	if err := k.Load(file.Provider(path), toml.Parser()); err != nil {
		var de *gotoml.DecodeError
		if errors.As(err, &de) {
			row, col := de.Position()
			return layer{}, &Error{kind: ErrSource, msg: fmt.Sprintf("parse %s: line %d, column %d: %s", path, row, col, oneLine(de.Error()))}
		}
		return layer{}, &Error{kind: ErrSource, msg: fmt.Sprintf("read %s: %s", path, oneLine(err.Error()))}
	}
	return layer{k: k, origin: func(string) string { return "in " + path }, text: false}, nil
}

func envLayer(environ []string) (layer, error) {
	names := map[string]string{}
	p := env.Provider(".", env.Opt{
		Prefix:      EnvPrefix,
		EnvironFunc: func() []string { return environ },
		TransformFunc: func(name, value string) (string, any) {
			if strings.HasPrefix(name, EnvReservedPrefix) {
				return "", nil // an empty key is dropped by the provider
			}
			key := strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(name, EnvPrefix)), "__", ".")
			names[key] = name
			return key, value
		},
	})
	k := koanf.New(".")
	if err := k.Load(p, nil); err != nil {
		return layer{}, &Error{kind: ErrSource, msg: "read environment: " + oneLine(err.Error())}
	}
	return layer{k: k, origin: func(key string) string {
		if n, ok := names[key]; ok {
			return "from environment variable " + n
		}
		return "from the environment"
	}, text: true}, nil
}

func flagLayer(fs *pflag.FlagSet) (layer, error) {
	names := map[string]string{}
	p := posflag.ProviderWithFlag(fs, ".", nil, func(f *pflag.Flag) (string, any) {
		keys := f.Annotations[flagKeyAnnotation]
		if len(keys) != 1 {
			return "", nil
		}
		names[keys[0]] = f.Name
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			var all []string
			for _, s := range sv.GetSlice() {
				all = append(all, splitList(s)...)
			}
			return keys[0], all
		}
		return keys[0], f.Value.String()
	})
	k := koanf.New(".")
	if err := k.Load(p, nil); err != nil {
		return layer{}, &Error{kind: ErrSource, msg: "read flags: " + oneLine(err.Error())}
	}
	return layer{k: k, origin: func(key string) string { return "from flag --" + names[key] }, text: true}, nil
}

// apply checks every key of l and decodes its value over the matching field
// of o. Keys are visited in sorted order so the reported error is stable.
func apply(o *Options, fields []field, l layer) error {
	byKey := make(map[string]field, len(fields))
	known := make([]string, len(fields))
	for i, f := range fields {
		byKey[f.key] = f
		known[i] = f.key
	}
	keys := l.k.Keys()
	slices.Sort(keys)
	for _, key := range keys {
		f, ok := byKey[key]
		if !ok {
			if err := keyError(key, l.origin(key), known, l.k.Get(key)); err != nil {
				return err
			}
			continue
		}
		if err := decodeField(o, f, l.k, l.text); err != nil {
			return &Error{Key: key, kind: ErrInvalidValue, msg: fmt.Sprintf("%s = %s %s: %s", key, showValue(key, l.k.Get(key)), l.origin(key), err)}
		}
	}
	return nil
}

// keyError explains why key is not accepted.
func keyError(key, origin string, known []string, value any) error {
	if hint, ok := unsupportedHint(key); ok {
		msg := key + " is not supported by this metasrv"
		if hint != "" {
			msg += "; " + hint
		}
		return &Error{Key: key, kind: ErrUnsupportedKey, msg: msg + " (" + origin + ")"}
	}
	for _, k := range known {
		if strings.HasPrefix(k, key+".") {
			if m, ok := value.(map[string]any); ok && len(m) == 0 {
				return nil // an empty table, e.g. "[grpc]" with nothing under it
			}
			return &Error{Key: key, kind: ErrInvalidValue, msg: fmt.Sprintf("%s is a table, not a value (%s); set its keys, e.g. %s", key, origin, k)}
		}
	}
	msg := fmt.Sprintf("unknown key %q %s", key, origin)
	if s := suggest(key, known); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	return &Error{Key: key, kind: ErrUnknownKey, msg: msg}
}

// decodeField decodes one key into a zero value of its field's type (so a list
// replaces, never merges with, the lower layer's list) and stores it in o.
func decodeField(o *Options, f field, k *koanf.Koanf, weak bool) error {
	dst := reflect.New(f.typ)
	err := k.UnmarshalWithConf(f.key, dst.Interface(), koanf.UnmarshalConf{
		DecoderConfig: &mapstructure.DecoderConfig{
			DecodeHook:       mapstructure.ComposeDecodeHookFunc(durationHook, byteSizeHook, intHook, listHook),
			WeaklyTypedInput: weak,
		},
	})
	if err != nil {
		var ve *valueError
		if errors.As(err, &ve) {
			return ve
		}
		return fmt.Errorf("expected %s", describe(f.typ))
	}
	reflect.ValueOf(o).Elem().FieldByIndex(f.index).Set(dst.Elem())
	return nil
}

// showValue prints a rejected value for an error message; store addresses may
// hold passwords, so they are shown sanitised or not at all.
func showValue(key string, v any) string {
	if key == "store_addrs" {
		switch v := v.(type) {
		case string:
			return fmt.Sprintf("%q", postgres.SanitizeStoreAddr(v))
		case []string:
			return fmt.Sprintf("%q", postgres.SanitizeStoreAddrs(v))
		default:
			return "(value hidden)"
		}
	}
	if _, secret := secretKeys[key]; secret {
		return "(value hidden)"
	}
	if s, ok := v.(string); ok {
		return fmt.Sprintf("%q", s)
	}
	return oneLine(fmt.Sprint(v))
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
