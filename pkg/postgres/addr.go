package postgres

import (
	"errors"
	"net"
	"net/url"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// A store address is read by pgconn.ParseConfig, the parser that connects,
// and never by string surgery of our own: what is masked, checked or shown is
// what PostgreSQL will be asked for. pgconn also reads the PG* environment
// variables (PGPASSWORD, PGPASSFILE, PGUSER, ...) and the password file, as
// libpq does; a password found there is used but, like any password, never
// shown.

// Masked stands in for a secret in a rendered address or configuration.
const Masked = "*****"

// AddrError is an unusable store address. Its message never contains the
// address or any part of it: an address that does not parse is exactly the one
// whose password cannot be located reliably. The parser's error is not
// wrapped for the same reason (pgconn.ParseConfigError keeps the raw string).
type AddrError struct {
	// Reason is the parser's complaint with every fragment of the input
	// removed, e.g. "failed to parse as keyword/value: invalid keyword/value".
	Reason string
}

func (e *AddrError) Error() string {
	return "not a valid PostgreSQL connection string (" + e.Reason + "); expected postgres://user@host:port/dbname or key=value pairs such as host=h port=5432 user=u dbname=d"
}

// ParseStoreAddr parses one store_addrs entry with pgconn.ParseConfig and
// checks what that parser is lenient about. Errors are *AddrError.
func ParseStoreAddr(addr string) (*pgconn.Config, error) {
	c, err := pgconn.ParseConfig(addr)
	if err != nil {
		return nil, AddrParseError(err)
	}
	for _, h := range distinctHosts(c) {
		// pgconn ends the user information of a URL at its first '@', so an
		// unencoded '@' in a password leaves the rest of the password in the
		// host name ("u:Pa@ss@h" connects to host "ss@h"), to be looked up in
		// DNS, logged and retried forever. No host name contains '@'.
		if !isSocket(h.host) && strings.Contains(h.host, "@") {
			return nil, &AddrError{Reason: `a host name contains "@"; in a URL, write an "@" of the user name or password as %40`}
		}
	}
	return c, nil
}

// AddrParseError turns an error of pgconn.ParseConfig, pgx.ParseConfig or
// pgxpool.ParseConfig into an *AddrError that cannot show the address: the
// raw string is dropped and quoted fragments of it are elided.
func AddrParseError(err error) error {
	var ae *AddrError
	if errors.As(err, &ae) {
		return ae
	}
	var reason string
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) {
		// The message without the (best-effort redacted) connection string:
		// a copy with ConnString cleared prints "cannot parse ``: <msg> (<err>)".
		bare := *pe
		bare.ConnString = ""
		reason = strings.TrimPrefix(bare.Error(), "cannot parse ``: ")
		var ue *url.Error
		if errors.As(pe.Unwrap(), &ue) {
			reason = strings.ReplaceAll(reason, ue.Error(), ue.Err.Error())
		}
		if inner := pe.Unwrap(); inner != nil {
			// "msg (inner)" reads better as "msg: inner".
			reason = strings.Replace(reason, " ("+inner.Error()+")", ": "+inner.Error(), 1)
		}
	} else {
		reason = err.Error()
	}
	return &AddrError{Reason: scrub(reason)}
}

var (
	// quoted matches a double-quoted or back-quoted fragment, which in
	// pgconn's messages is text taken from the input (a keyword, a URL
	// escape, a query parameter, a strconv input).
	quoted = regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|`[^`]*`")
	// valueTail is the unquoted value of "unknown target_session_attrs value: x".
	valueTail = regexp.MustCompile(`(\bunknown \S+ value: ).*$`)
	alnum     = regexp.MustCompile(`[\pL\pN]`)
)

// scrub removes input fragments from a parser message; quoted punctuation
// such as "=" or "]" is the parser's own wording and kept.
func scrub(s string) string {
	s = quoted.ReplaceAllStringFunc(s, func(q string) string {
		if alnum.MatchString(q) {
			return `"…"`
		}
		return q
	})
	return valueTail.ReplaceAllString(s, "${1}…")
}

// secretConnKey reports connection-string keys whose value is a credential.
func secretConnKey(key string) bool { return key == "password" || key == "sslpassword" }

// carriesSecret reports whether the connection string itself holds a
// password, in whatever form pgconn accepts (URL user information, ?password=,
// key=value quoted or escaped). It asks pgconn: parsing with an allow-list of
// keys fails naming the first key not on it, so the list grows key by key
// until the string parses or a secret key is named. Any answer it does not
// understand counts as a secret.
func carriesSecret(addr string) bool {
	allowed := []string{}
	for range 64 {
		_, err := pgconn.ParseConfigWithOptions(addr, pgconn.ParseConfigOptions{ConnStringAllowedKeys: allowed})
		if err == nil {
			return false
		}
		key, ok := disallowedKey(err)
		if !ok || secretConnKey(key) {
			return true
		}
		allowed = append(allowed, key)
	}
	return true
}

var notAllowedMsg = regexp.MustCompile("^cannot parse ``: connection string key (\"(?:[^\"\\\\]|\\\\.)*\") is not in ConnStringAllowedKeys$")

func disallowedKey(err error) (string, bool) {
	var pe *pgconn.ParseConfigError
	if !errors.As(err, &pe) {
		return "", false
	}
	bare := *pe
	bare.ConnString = ""
	m := notAllowedMsg.FindStringSubmatch(bare.Error())
	if m == nil {
		return "", false
	}
	key, err := strconv.Unquote(m[1])
	return key, err == nil
}

// SanitizeStoreAddr gives a store address that is safe to print, log or
// serve on /admin/config. An address holding no password is shown as written.
// One with a password is rebuilt from the parsed configuration, password
// masked: hosts and ports (all of them), user, database, sslmode,
// target_session_attrs, connect_timeout and application_name; other
// parameters (certificate paths, server settings) are left out. An address
// that does not parse is not shown at all.
//
// A password taken from PGPASSWORD or the password file is not part of the
// address and never appears.
func SanitizeStoreAddr(addr string) string {
	c, err := ParseStoreAddr(addr)
	if err != nil {
		return "(invalid address, not shown)"
	}
	if !carriesSecret(addr) {
		return addr
	}
	return maskedAddr(c)
}

// SanitizeStoreAddrs applies SanitizeStoreAddr to each address.
func SanitizeStoreAddrs(addrs []string) []string {
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = SanitizeStoreAddr(a)
	}
	return out
}

// Describe names a parsed address for logs and errors, without its
// password: user@host:port[,host:port...]/database.
func Describe(c pgconn.Config) string {
	hosts := distinctHosts(&c)
	parts := make([]string, len(hosts))
	for i, h := range hosts {
		parts[i] = h.String()
	}
	return c.User + "@" + strings.Join(parts, ",") + "/" + c.Database
}

// pgHost is one host of a parsed address.
type pgHost struct {
	host string
	port uint16
}

func (h pgHost) String() string {
	if isSocket(h.host) {
		return h.host
	}
	return net.JoinHostPort(h.host, strconv.Itoa(int(h.port)))
}

func isSocket(host string) bool { return strings.HasPrefix(host, "/") }

// distinctHosts lists the hosts of c in connection order; pgconn repeats a
// host in the fallbacks for each TLS attempt (sslmode=prefer: TLS, then plain).
func distinctHosts(c *pgconn.Config) []pgHost {
	seen := map[pgHost]bool{}
	var out []pgHost
	add := func(h pgHost) {
		if !seen[h] {
			seen[h] = true
			out = append(out, h)
		}
	}
	add(pgHost{c.Host, c.Port})
	for _, f := range c.Fallbacks {
		add(pgHost{f.Host, f.Port})
	}
	return out
}

// maskedAddr renders c as a URL (key=value form when a host is a Unix
// socket) with the password masked.
func maskedAddr(c *pgconn.Config) string {
	hosts := distinctHosts(c)
	params := [][2]string{}
	if mode := sslMode(c); mode != "" {
		params = append(params, [2]string{"sslmode", mode})
	}
	if tsa := targetSessionAttrs(c.ValidateConnect); tsa != "" {
		params = append(params, [2]string{"target_session_attrs", tsa})
	}
	if c.ConnectTimeout > 0 {
		params = append(params, [2]string{"connect_timeout", strconv.Itoa(int(c.ConnectTimeout / time.Second))})
	}
	if app, ok := c.RuntimeParams["application_name"]; ok {
		params = append(params, [2]string{"application_name", app})
	}

	socket := false
	for _, h := range hosts {
		socket = socket || isSocket(h.host)
	}
	if socket {
		hs, ps := make([]string, len(hosts)), make([]string, len(hosts))
		for i, h := range hosts {
			hs[i], ps[i] = h.host, strconv.Itoa(int(h.port))
		}
		kv := [][2]string{{"host", strings.Join(hs, ",")}, {"port", strings.Join(ps, ",")}, {"user", c.User}, {"password", Masked}, {"dbname", c.Database}}
		var b strings.Builder
		for i, p := range append(kv, params...) {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(p[0] + "=" + quoteKV(p[1]))
		}
		return b.String()
	}

	hs := make([]string, len(hosts))
	for i, h := range hosts {
		hs[i] = h.String()
	}
	q := url.Values{}
	for _, p := range params {
		q.Set(p[0], p[1])
	}
	// url.UserPassword would escape the mask's '*'; the user is escaped alone.
	out := "postgres://" + url.User(c.User).String() + ":" + Masked + "@" + strings.Join(hs, ",") + "/" + url.PathEscape(c.Database)
	if len(q) > 0 {
		out += "?" + q.Encode()
	}
	return out
}

// quoteKV writes a key=value connection string value, quoted when needed.
func quoteKV(v string) string {
	if v != "" && !strings.ContainsAny(v, " \t\n\r\v\f'\\") {
		return v
	}
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

// sslMode reads libpq's sslmode back from pgconn's TLS attempts for the first
// TCP host; "" when every host is a Unix socket (no TLS there).
func sslMode(c *pgconn.Config) string {
	var attempts []*pgconn.FallbackConfig
	attempts = append(attempts, &pgconn.FallbackConfig{Host: c.Host, Port: c.Port, TLSConfig: c.TLSConfig})
	attempts = append(attempts, c.Fallbacks...)
	var first *pgconn.FallbackConfig
	var tlsOn []bool
	for _, a := range attempts {
		if isSocket(a.Host) {
			continue
		}
		if first == nil {
			first = a
		}
		if a.Host != first.Host || a.Port != first.Port {
			break
		}
		tlsOn = append(tlsOn, a.TLSConfig != nil)
	}
	switch {
	case first == nil:
		return ""
	case len(tlsOn) == 2 && !tlsOn[0]:
		return "allow"
	case len(tlsOn) == 2:
		return "prefer"
	case !tlsOn[0]:
		return "disable"
	}
	tc := first.TLSConfig
	switch {
	case !tc.InsecureSkipVerify:
		return "verify-full"
	case tc.VerifyPeerCertificate != nil:
		return "verify-ca"
	}
	return "require"
}

// targetSessionAttrs names pgconn's ValidateConnect function back.
func targetSessionAttrs(f pgconn.ValidateConnectFunc) string {
	if f == nil {
		return ""
	}
	p := reflect.ValueOf(f).Pointer()
	for name, g := range map[string]pgconn.ValidateConnectFunc{
		"read-write":     pgconn.ValidateConnectTargetSessionAttrsReadWrite,
		"read-only":      pgconn.ValidateConnectTargetSessionAttrsReadOnly,
		"primary":        pgconn.ValidateConnectTargetSessionAttrsPrimary,
		"standby":        pgconn.ValidateConnectTargetSessionAttrsStandby,
		"prefer-standby": pgconn.ValidateConnectTargetSessionAttrsPreferStandby,
	} {
		if reflect.ValueOf(g).Pointer() == p {
			return name
		}
	}
	return ""
}
