package postgres

import (
	"context"
	"crypto/x509"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/internal/pgtest"
)

// tlsEnv is a TLS-enabled cluster with the files a client needs.
type tlsEnv struct {
	cluster               *pgtest.Cluster
	caPath, wrongCAPath   string
	clientCert, clientKey string
	superDSN              string // postgres user, password auth
	certUserDSN           string // certuser, authenticated by client certificate only
}

func newTLSEnv(t *testing.T) *tlsEnv {
	t.Helper()
	ca := newCA(t, "metasrv test CA")
	server := ca.issue(t, "postgres-server", []string{"localhost"}, []net.IP{net.ParseIP("127.0.0.1")})
	client := ca.issue(t, "certuser", nil, nil)
	wrongCA := newCA(t, "someone else's CA")

	cluster := pgtest.NewCluster(t, pgtest.ClusterOptions{
		Files: map[string][]byte{
			"server.crt": server.certPEM,
			"server.key": server.keyPEM,
			"root.crt":   ca.certPEM,
		},
		Conf: []string{
			"ssl=on",
			"ssl_cert_file='server.crt'",
			"ssl_key_file='server.key'",
			"ssl_ca_file='root.crt'",
		},
		HBA: []string{"hostssl all certuser 127.0.0.1/32 cert"},
	})

	dir := t.TempDir()
	env := &tlsEnv{
		cluster:     cluster,
		caPath:      filepath.Join(dir, "ca.crt"),
		wrongCAPath: filepath.Join(dir, "wrong-ca.crt"),
		clientCert:  filepath.Join(dir, "client.crt"),
		clientKey:   filepath.Join(dir, "client.key"),
		superDSN:    cluster.DSN(),
	}
	for path, data := range map[string][]byte{
		env.caPath: ca.certPEM, env.wrongCAPath: wrongCA.certPEM,
		env.clientCert: client.certPEM, env.clientKey: client.keyPEM,
	} {
		require.NoError(t, os.WriteFile(path, data, 0o600))
	}
	u, err := url.Parse(cluster.DSN())
	require.NoError(t, err)
	u.User = url.User("certuser")
	env.certUserDSN = u.String()

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, env.superDSN)
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "CREATE ROLE certuser LOGIN")
	require.NoError(t, err)
	return env
}

// withHost returns dsn naming host instead of 127.0.0.1.
func withHost(t *testing.T, dsn, host string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	u.Host = net.JoinHostPort(host, u.Port())
	return u.String()
}

// sslInUse connects with cc and reports whether the session is encrypted.
func sslInUse(ctx context.Context, cc *pgx.ConnConfig) (bool, error) {
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return false, err
	}
	defer conn.Close(ctx)
	var ssl bool
	err = conn.QueryRow(ctx, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&ssl)
	return ssl, err
}

func TestTLSAgainstRealServer(t *testing.T) {
	t.Parallel()
	env := newTLSEnv(t)
	ctx := context.Background()

	connConfig := func(t *testing.T, dsn string, tlsOpts TLSOptions) *pgx.ConnConfig {
		o := defaultOptions()
		o.StoreAddrs = []string{dsn}
		o.TLS = tlsOpts
		cc, err := ConnConfig(o, "tls_test")
		require.NoError(t, err)
		return cc
	}

	t.Run("verify_full", func(t *testing.T) {
		for _, host := range []string{"127.0.0.1", "localhost"} {
			cc := connConfig(t, withHost(t, env.superDSN, host), TLSOptions{Mode: TLSVerifyFull, CACertPath: env.caPath})
			ssl, err := sslInUse(ctx, cc)
			require.NoError(t, err, host)
			require.True(t, ssl, host)
		}
	})

	t.Run("verify_full rejects a server signed by another CA", func(t *testing.T) {
		cc := connConfig(t, env.superDSN, TLSOptions{Mode: TLSVerifyFull, CACertPath: env.wrongCAPath})
		_, err := sslInUse(ctx, cc)
		var unknown x509.UnknownAuthorityError
		require.ErrorAs(t, err, &unknown)
	})

	t.Run("verify_full rejects a host name not in the certificate", func(t *testing.T) {
		cc := connConfig(t, withHost(t, env.superDSN, "db.wrong.example"), TLSOptions{Mode: TLSVerifyFull, CACertPath: env.caPath})
		cc.LookupFunc = loopbackLookup
		_, err := sslInUse(ctx, cc)
		var hostErr x509.HostnameError
		require.ErrorAs(t, err, &hostErr)
	})

	t.Run("verify_ca ignores the host name but checks the chain", func(t *testing.T) {
		cc := connConfig(t, withHost(t, env.superDSN, "db.wrong.example"), TLSOptions{Mode: TLSVerifyCA, CACertPath: env.caPath})
		cc.LookupFunc = loopbackLookup
		ssl, err := sslInUse(ctx, cc)
		require.NoError(t, err)
		require.True(t, ssl)

		cc = connConfig(t, env.superDSN, TLSOptions{Mode: TLSVerifyCA, CACertPath: env.wrongCAPath})
		_, err = sslInUse(ctx, cc)
		var unknown x509.UnknownAuthorityError
		require.ErrorAs(t, err, &unknown)
	})

	t.Run("require encrypts without verification", func(t *testing.T) {
		cc := connConfig(t, env.superDSN, TLSOptions{Mode: TLSRequire})
		ssl, err := sslInUse(ctx, cc)
		require.NoError(t, err)
		require.True(t, ssl)

		// With a CA file, libpq's require verifies the chain; so do we.
		cc = connConfig(t, env.superDSN, TLSOptions{Mode: TLSRequire, CACertPath: env.wrongCAPath})
		_, err = sslInUse(ctx, cc)
		require.Error(t, err)
	})

	t.Run("prefer and disable", func(t *testing.T) {
		ssl, err := sslInUse(ctx, connConfig(t, env.superDSN, TLSOptions{Mode: TLSPrefer}))
		require.NoError(t, err)
		require.True(t, ssl)
		ssl, err = sslInUse(ctx, connConfig(t, env.superDSN, TLSOptions{Mode: TLSDisable}))
		require.NoError(t, err)
		require.False(t, ssl)
	})

	t.Run("client certificate authentication", func(t *testing.T) {
		cc := connConfig(t, env.certUserDSN, TLSOptions{
			Mode: TLSVerifyFull, CACertPath: env.caPath, CertPath: env.clientCert, KeyPath: env.clientKey,
		})
		conn, err := pgx.ConnectConfig(ctx, cc)
		require.NoError(t, err)
		defer conn.Close(ctx)
		var user string
		require.NoError(t, conn.QueryRow(ctx, "SELECT current_user").Scan(&user))
		require.Equal(t, "certuser", user)

		// Without the certificate the cert rule refuses the role.
		cc = connConfig(t, env.certUserDSN, TLSOptions{Mode: TLSVerifyFull, CACertPath: env.caPath})
		_, err = pgx.ConnectConfig(ctx, cc)
		var pgErr *pgconn.PgError
		require.ErrorAs(t, err, &pgErr)
		require.Equal(t, "28000", pgErr.Code)
	})

	t.Run("Connect gives up at once on an untrusted certificate", func(t *testing.T) {
		o := defaultOptions()
		o.StoreAddrs = []string{env.superDSN}
		o.TLS = TLSOptions{Mode: TLSVerifyFull, CACertPath: env.wrongCAPath}
		pc, err := PoolConfig(o, "tls_test")
		require.NoError(t, err)
		_, err = Connect(ctx, pc, nil) // no deadline: a retry loop would hang the test
		var unknown x509.UnknownAuthorityError
		require.ErrorAs(t, err, &unknown)
	})
}

// loopbackLookup resolves every name to 127.0.0.1, so a test can reach the
// local server under a name its certificate does not list.
func loopbackLookup(context.Context, string) ([]string, error) {
	return []string{"127.0.0.1"}, nil
}
