package pgtest

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// withDatabase returns dsn as a postgres:// URL naming database db instead.
// A key=value DSN (from METASRV_TEST_PG_DSN) is converted.
func withDatabase(dsn, db string) (string, error) {
	if !strings.Contains(dsn, "://") {
		var err error
		if dsn, err = keyValueToURL(dsn); err != nil {
			return "", err
		}
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "", fmt.Errorf("%s is not a valid URL", EnvDSN) // no detail: it may echo the password
	}
	u.Path = "/" + db
	u.RawPath = ""
	q := u.Query()
	q.Del("dbname")
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// keyValueToURL converts "host=h port=5432 user=u password='p w' sslmode=disable"
// into the URL form. Parameters other than host, port, user, password and
// dbname become query parameters.
func keyValueToURL(dsn string) (string, error) {
	params, err := parseKeyValue(dsn)
	if err != nil {
		return "", err
	}
	u := url.URL{Scheme: "postgres"}
	hosts := strings.Split(params["host"], ",")
	ports := strings.Split(params["port"], ",")
	var hostPorts []string
	for i, h := range hosts {
		p := ports[0]
		if i < len(ports) {
			p = ports[i]
		}
		switch {
		case p == "":
			hostPorts = append(hostPorts, h)
		case strings.Contains(h, ":"):
			hostPorts = append(hostPorts, net.JoinHostPort(h, p))
		default:
			hostPorts = append(hostPorts, h+":"+p)
		}
	}
	u.Host = strings.Join(hostPorts, ",")
	if pw, ok := params["password"]; ok {
		u.User = url.UserPassword(params["user"], pw)
	} else if params["user"] != "" {
		u.User = url.User(params["user"])
	}
	u.Path = "/" + params["dbname"]
	q := url.Values{}
	for k, v := range params {
		switch k {
		case "host", "port", "user", "password", "dbname":
		default:
			q.Set(k, v)
		}
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// parseKeyValue follows libpq's key=value syntax: values may be single-quoted,
// with \' and \\ escapes inside or outside quotes.
func parseKeyValue(s string) (map[string]string, error) {
	params := map[string]string{}
	i := 0
	skipSpace := func() {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
			i++
		}
	}
	for {
		skipSpace()
		if i >= len(s) {
			return params, nil
		}
		eq := strings.IndexByte(s[i:], '=')
		if eq < 0 {
			return nil, fmt.Errorf("%s: missing '=' after %q", EnvDSN, strings.TrimSpace(s[i:min(len(s), i+20)]))
		}
		key := strings.TrimSpace(s[i : i+eq])
		i += eq + 1
		skipSpace()
		var val strings.Builder
		if i < len(s) && s[i] == '\'' {
			i++
			closed := false
			for i < len(s) {
				c := s[i]
				if c == '\\' && i+1 < len(s) {
					val.WriteByte(s[i+1])
					i += 2
					continue
				}
				i++
				if c == '\'' {
					closed = true
					break
				}
				val.WriteByte(c)
			}
			if !closed {
				return nil, fmt.Errorf("%s: unterminated quoted value of %q", EnvDSN, key)
			}
		} else {
			for i < len(s) && s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r' {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				val.WriteByte(s[i])
				i++
			}
		}
		params[key] = val.String()
	}
}
