package pgtest

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// withDatabase returns dsn as a postgres:// URL naming database db instead.
// dsn is read by pgconn.ParseConfig, the parser that connects: a URL keeps
// every parameter and only changes its path; a key=value DSN (from
// METASRV_TEST_PG_DSN) is rebuilt as a URL from what pgconn parsed.
func withDatabase(dsn, db string) (string, error) {
	c, err := pgconn.ParseConfig(dsn)
	if err != nil {
		// No detail: pgconn's message may echo the password.
		return "", fmt.Errorf("%s is not a valid PostgreSQL connection string", EnvDSN)
	}
	if strings.Contains(dsn, "://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", fmt.Errorf("%s is not a valid URL", EnvDSN)
		}
		u.Path, u.RawPath = "/"+db, ""
		q := u.Query()
		q.Del("dbname")
		u.RawQuery = q.Encode()
		return u.String(), nil
	}
	return configURL(c, db)
}

// configURL renders a parsed key=value DSN as a URL for database db: hosts,
// user, password, server settings, connect_timeout and sslmode. What pgconn
// keeps only in loaded form (certificate files, target_session_attrs) cannot
// be written back; such a DSN must be given as a URL.
func configURL(c *pgconn.Config, db string) (string, error) {
	type attempt struct {
		host string
		port uint16
		tls  bool
	}
	attempts := []attempt{{c.Host, c.Port, c.TLSConfig != nil}}
	for _, f := range c.Fallbacks {
		attempts = append(attempts, attempt{f.Host, f.Port, f.TLSConfig != nil})
	}
	q := url.Values{}
	var hosts []string
	var sslmode []bool // TLS of the first host's attempts, in order
	for i, a := range attempts {
		if i > 0 && a.host == attempts[i-1].host && a.port == attempts[i-1].port {
			if len(hosts) == 1 {
				sslmode = append(sslmode, a.tls)
			}
			continue
		}
		if strings.HasPrefix(a.host, "/") {
			q.Add("host", a.host) // a Unix socket directory
			q.Add("port", strconv.Itoa(int(a.port)))
			continue
		}
		hosts = append(hosts, net.JoinHostPort(a.host, strconv.Itoa(int(a.port))))
		if len(hosts) == 1 {
			sslmode = append(sslmode, a.tls)
		}
	}
	if tc := c.TLSConfig; c.ValidateConnect != nil || tc != nil && (!tc.InsecureSkipVerify || tc.VerifyPeerCertificate != nil || len(tc.Certificates) > 0) {
		return "", fmt.Errorf("%s: give a DSN with certificate verification, a client certificate or target_session_attrs as a postgres:// URL", EnvDSN)
	}
	switch {
	case len(sslmode) == 2 && sslmode[0]:
		q.Set("sslmode", "prefer")
	case len(sslmode) == 2:
		q.Set("sslmode", "allow")
	case len(sslmode) == 1 && sslmode[0]:
		q.Set("sslmode", "require")
	case len(sslmode) == 1:
		q.Set("sslmode", "disable")
	}
	if c.ConnectTimeout > 0 {
		q.Set("connect_timeout", strconv.Itoa(int(c.ConnectTimeout/time.Second)))
	}
	for k, v := range c.RuntimeParams {
		q.Set(k, v)
	}
	u := url.URL{Scheme: "postgres", Host: strings.Join(hosts, ","), Path: "/" + db, RawQuery: q.Encode()}
	if c.Password != "" {
		u.User = url.UserPassword(c.User, c.Password)
	} else {
		u.User = url.User(c.User)
	}
	return u.String(), nil
}
