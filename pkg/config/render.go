package config

import (
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/knadh/koanf/parsers/toml/v2"

	"github.com/pgmetasrv/metasrv/pkg/postgres"
)

// Render returns o as TOML, the format Load reads back: durations as "5s",
// sizes as "1500KiB", store_addrs with any password masked and a set
// http.admin_token shown as the mask, so the output is safe to print, log or
// serve on /admin/config.
func Render(o Options) ([]byte, error) {
	o.StoreAddrs = postgres.SanitizeStoreAddrs(o.StoreAddrs)
	if o.HTTP.AdminToken != "" {
		o.HTTP.AdminToken = postgres.Masked
	}
	root := map[string]any{}
	v := reflect.ValueOf(o)
	for _, f := range leafFields() {
		m := root
		parts := strings.Split(f.key, ".")
		for _, p := range parts[:len(parts)-1] {
			sub, ok := m[p].(map[string]any)
			if !ok {
				sub = map[string]any{}
				m[p] = sub
			}
			m = sub
		}
		m[parts[len(parts)-1]] = plain(v.FieldByIndex(f.index))
	}
	out, err := toml.Parser().Marshal(root)
	if err != nil {
		return nil, fmt.Errorf("config: render: %w", err)
	}
	return out, nil
}

// secretKeys are keys whose value is a credential as a whole: never shown.
var secretKeys = map[string]struct{}{"http.admin_token": {}}

// plain converts a field to the value written in TOML.
func plain(v reflect.Value) any {
	switch v.Type() {
	case durationType:
		return formatDuration(time.Duration(v.Int()))
	case byteSizeType:
		return ByteSize(v.Int()).String()
	}
	return v.Interface()
}

// formatValue shows the current value of key in o, as Render would.
func formatValue(o Options, key string) string {
	for _, f := range leafFields() {
		if f.key == key {
			return fmt.Sprint(plain(reflect.ValueOf(o).FieldByIndex(f.index)))
		}
	}
	return "?"
}

// formatDuration writes d without zero components: 24h, 10m, 1h30m, 500ms.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
