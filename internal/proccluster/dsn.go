package proccluster

import (
	"errors"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/pgmetasrv/metasrv/pkg/config"
	"github.com/pgmetasrv/metasrv/pkg/postgres"
)

// Upstream is the network ("tcp" or "unix") and address of the one
// PostgreSQL host dsn names, for a proxy in front of it.
func Upstream(dsn string) (network, addr string, err error) {
	o := config.Default()
	o.Backend, o.StoreAddrs = config.BackendPostgres, []string{dsn}
	cc, err := postgres.ConnConfig(o.Store(), "")
	if err != nil {
		return "", "", err
	}
	// A fallback may be the same host without TLS (sslmode=prefer); any
	// other host is one the proxy could not stand in front of.
	for _, fb := range cc.Fallbacks {
		if fb.Host != cc.Host || fb.Port != cc.Port {
			return "", "", errors.New("a proxy stands in front of one PostgreSQL host: give a single host")
		}
	}
	if strings.HasPrefix(cc.Host, "/") {
		return "unix", filepath.Join(cc.Host, ".s.PGSQL."+strconv.Itoa(int(cc.Port))), nil
	}
	return "tcp", net.JoinHostPort(cc.Host, strconv.Itoa(int(cc.Port))), nil
}

// DSNVia rewrites dsn (URL or key=value) to reach hostPort instead of the
// host it names, keeping everything else.
func DSNVia(dsn, hostPort string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", errors.New("the store address is not a valid URL")
		}
		q := u.Query()
		q.Del("host")
		q.Del("port")
		u.RawQuery = q.Encode()
		u.Host = hostPort
		return u.String(), nil
	}
	host, port, err := net.SplitHostPort(hostPort)
	if err != nil {
		return "", err
	}
	// key=value form: a later keyword wins.
	return dsn + " host=" + host + " port=" + port, nil
}
