package postgres

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"
)

func opts(addrs ...string) Options {
	o := defaultOptions()
	o.StoreAddrs = addrs
	return o
}

func TestConnConfigSingleURL(t *testing.T) {
	t.Parallel()
	o := opts("postgres://meta:s3cret@db1:5433/metadb?sslmode=disable&application_name=ops")
	o.ConnectTimeout = 7 * time.Second
	cc, err := ConnConfig(o, "metasrv-test")
	require.NoError(t, err)
	require.Equal(t, "db1", cc.Host)
	require.Equal(t, uint16(5433), cc.Port)
	require.Equal(t, "meta", cc.User)
	require.Equal(t, "s3cret", cc.Password)
	require.Equal(t, "metadb", cc.Database)
	require.Nil(t, cc.TLSConfig)
	require.Empty(t, cc.Fallbacks)
	require.Nil(t, cc.ValidateConnect, "one host: no read-write check needed")
	require.Equal(t, "metasrv-test", cc.RuntimeParams["application_name"])
	require.Equal(t, 7*time.Second, cc.ConnectTimeout)
}

func TestConnConfigKeepsAddressConnectTimeout(t *testing.T) {
	t.Parallel()
	cc, err := ConnConfig(opts("host=db1 user=u dbname=d sslmode=disable connect_timeout=2"), "")
	require.NoError(t, err)
	require.Equal(t, 2*time.Second, cc.ConnectTimeout)
	require.Equal(t, "d", cc.Database)
}

func TestConnConfigSeveralAddressesMerge(t *testing.T) {
	t.Parallel()
	cc, err := ConnConfig(opts(
		"postgres://u:pw@db1:5432/meta?sslmode=disable",
		"host=db2 port=5433 user=u password=pw dbname=meta sslmode=disable",
	), "")
	require.NoError(t, err)
	require.Equal(t, "db1", cc.Host)
	require.Len(t, cc.Fallbacks, 1)
	require.Equal(t, "db2", cc.Fallbacks[0].Host)
	require.Equal(t, uint16(5433), cc.Fallbacks[0].Port)
	require.NotNil(t, cc.ValidateConnect, "several hosts: only a writable one is accepted")
}

func TestConnConfigMultiHostEntry(t *testing.T) {
	t.Parallel()
	cc, err := ConnConfig(opts("postgres://u:pw@db1:5432,db2:5432/meta?sslmode=disable"), "")
	require.NoError(t, err)
	require.Len(t, cc.Fallbacks, 1)
	require.NotNil(t, cc.ValidateConnect)
}

func TestConnConfigEntriesMustShareCredentials(t *testing.T) {
	t.Parallel()
	_, err := ConnConfig(opts(
		"postgres://u:topsecret@db1/meta",
		"postgres://other:topsecret@db2/meta",
	), "")
	require.ErrorContains(t, err, "store_addrs[1]")
	require.ErrorContains(t, err, "one PostgreSQL cluster")
	require.NotContains(t, err.Error(), "topsecret")
}

func TestConnConfigErrorsHidePassword(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{
		"postgres://u:topsecret@db1:notaport/meta",
		"postgres://u:topsecret@db1/meta?sslmode=bogus",
		"host=db1 password=topsecret sslmode=bogus",
		"host=db1 password=topsecret port=x",
	} {
		_, err := ConnConfig(opts(addr), "")
		require.Error(t, err, addr)
		require.ErrorContains(t, err, "store_addrs[0]")
		require.NotContains(t, err.Error(), "topsecret", addr)
	}
	// Forms PostgreSQL's parser refuses or misreads; none is echoed back.
	for _, addr := range []string{
		"postgres:/u:topsecret@h/db",
		"u:topsecret@h:5432/db",
		"postgres://u:Pa@ss_topsecret@h:5432/db", // '@' unencoded: pgconn would dial host "ss_topsecret@h"
		"host=h password=Open topsecret dbname=m",
	} {
		_, err := ConnConfig(opts("postgres://u@ok/db", addr), "")
		require.Error(t, err, addr)
		require.True(t, strings.HasPrefix(err.Error(), "store_addrs[1]: not a valid PostgreSQL connection string ("), err.Error())
		require.NotContains(t, err.Error(), "topsecret", addr)
		var ae *AddrError
		require.ErrorAs(t, err, &ae, "wrapped with %%w")
		var pe *pgconn.ParseConfigError
		require.False(t, errors.As(err, &pe), "pgconn's error keeps the raw address and is not wrapped")
	}
	_, err := ConnConfig(opts("postgres://u:Pa@ss_topsecret@h:5432/db"), "")
	require.ErrorContains(t, err, `a host name contains "@"; in a URL, write an "@" of the user name or password as %40`)
	cc, err := ConnConfig(opts("postgres://u:Pa%40ss_topsecret@h:5432/db"), "")
	require.NoError(t, err)
	require.Equal(t, "Pa@ss_topsecret", cc.Password)
	require.Equal(t, "u@h:5432/db", Describe(cc.Config))

	_, err = ConnConfig(opts(), "")
	require.ErrorContains(t, err, "store_addrs is empty")
	_, err = ConnConfig(opts("  "), "")
	require.ErrorContains(t, err, "store_addrs[0] is empty")
}

func TestPoolConfigOptions(t *testing.T) {
	t.Parallel()
	o := opts("postgres://u@db1/meta?sslmode=disable&pool_max_conns=3")
	o.MaxConns, o.MinConns, o.MaxConnLifetime, o.MaxConnIdleTime, o.ConnectTimeout = 9, 2, time.Minute, 30*time.Second, time.Second
	pc, err := PoolConfig(o, "pool")
	require.NoError(t, err)
	require.EqualValues(t, 9, pc.MaxConns)
	require.EqualValues(t, 2, pc.MinConns)
	require.Equal(t, time.Minute, pc.MaxConnLifetime)
	require.Equal(t, 30*time.Second, pc.MaxConnIdleTime)
	require.Equal(t, time.Second, pc.ConnConfig.ConnectTimeout)
	require.Equal(t, "pool", pc.ConnConfig.RuntimeParams["application_name"])
	_, sent := pc.ConnConfig.RuntimeParams["pool_max_conns"]
	require.False(t, sent, "pool_* keys are not server settings")

	o.MaxConns = 0 // keep the address's pool_max_conns
	o.MinConns = 0
	pc, err = PoolConfig(o, "")
	require.NoError(t, err)
	require.EqualValues(t, 3, pc.MaxConns)

	o.MaxConns, o.MinConns = 2, 5
	_, err = PoolConfig(o, "")
	require.ErrorContains(t, err, "postgres.min_conns (5) is greater than postgres.max_conns (2)")
}

func TestTLSModes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := newCA(t, "test-ca")
	caPath := filepath.Join(dir, "ca.crt")
	require.NoError(t, os.WriteFile(caPath, ca.certPEM, 0o600))
	client := ca.issue(t, "certuser", nil, nil)
	certPath, keyPath := filepath.Join(dir, "c.crt"), filepath.Join(dir, "c.key")
	require.NoError(t, os.WriteFile(certPath, client.certPEM, 0o600))
	require.NoError(t, os.WriteFile(keyPath, client.keyPEM, 0o600))

	addrs := []string{"postgres://u@db1/meta", "postgres://u@db2/meta"}
	build := func(tlsOpts TLSOptions) (*pgxConnConfigView, error) {
		o := opts(addrs...)
		o.TLS = tlsOpts
		cc, err := ConnConfig(o, "")
		if err != nil {
			return nil, err
		}
		return view(cc), nil
	}

	v, err := build(TLSOptions{Mode: TLSDisable})
	require.NoError(t, err)
	require.Equal(t, []string{"db1:plain", "db2:plain"}, v.attempts)

	v, err = build(TLSOptions{Mode: TLSPrefer})
	require.NoError(t, err)
	require.Equal(t, []string{"db1:tls", "db1:plain", "db2:tls", "db2:plain"}, v.attempts)
	require.True(t, v.first.InsecureSkipVerify)

	v, err = build(TLSOptions{Mode: TLSRequire})
	require.NoError(t, err)
	require.Equal(t, []string{"db1:tls", "db2:tls"}, v.attempts)
	require.True(t, v.first.InsecureSkipVerify)
	require.Nil(t, v.first.VerifyConnection, "require without a CA does not verify")

	v, err = build(TLSOptions{Mode: TLSRequire, CACertPath: caPath})
	require.NoError(t, err)
	require.NotNil(t, v.first.VerifyConnection, "require with a CA verifies the chain, as libpq")

	v, err = build(TLSOptions{Mode: TLSVerifyCA, CACertPath: caPath})
	require.NoError(t, err)
	require.True(t, v.first.InsecureSkipVerify)
	require.NotNil(t, v.first.VerifyConnection)

	v, err = build(TLSOptions{Mode: TLSVerifyFull, CACertPath: caPath, CertPath: certPath, KeyPath: keyPath})
	require.NoError(t, err)
	require.Equal(t, []string{"db1:tls", "db2:tls"}, v.attempts)
	require.False(t, v.first.InsecureSkipVerify)
	require.Equal(t, "db1", v.first.ServerName)
	require.Equal(t, "db2", v.serverNames[1], "each host is verified under its own name")
	require.Len(t, v.first.Certificates, 1)

	v, err = build(TLSOptions{Mode: TLSAllow})
	require.NoError(t, err)
	require.Equal(t, []string{"db1:plain", "db1:tls", "db2:plain", "db2:tls"}, v.attempts, "allow: plain first, as libpq")

	// libpq's spellings mean the same as ours.
	v, err = build(TLSOptions{Mode: "verify-full", CACertPath: caPath})
	require.NoError(t, err)
	require.Equal(t, []string{"db1:tls", "db2:tls"}, v.attempts)
	require.False(t, v.first.InsecureSkipVerify)
	require.Equal(t, "db1", v.first.ServerName)
	v, err = build(TLSOptions{Mode: "verify-ca", CACertPath: caPath})
	require.NoError(t, err)
	require.True(t, v.first.InsecureSkipVerify)
	require.NotNil(t, v.first.VerifyConnection)

	_, err = build(TLSOptions{Mode: "verify-fullest"})
	require.ErrorContains(t, err, `backend_tls.mode: unknown mode "verify-fullest"`)
	_, err = build(TLSOptions{Mode: TLSVerifyFull, CACertPath: filepath.Join(dir, "missing.crt")})
	require.ErrorContains(t, err, "backend_tls.ca_cert_path")
	_, err = build(TLSOptions{Mode: TLSVerifyFull, CACertPath: keyPath})
	require.ErrorContains(t, err, "no PEM certificate")
	_, err = build(TLSOptions{Mode: TLSRequire, CertPath: certPath})
	require.ErrorContains(t, err, "cert_path and key_path must be set together")
	_, err = build(TLSOptions{CACertPath: caPath})
	require.ErrorContains(t, err, "backend_tls.mode is empty")

	// Empty mode keeps the address's own sslmode.
	o := opts("postgres://u@db1/meta?sslmode=require")
	cc, err := ConnConfig(o, "")
	require.NoError(t, err)
	require.NotNil(t, cc.TLSConfig)
	require.Empty(t, cc.Fallbacks)
}

func TestQuoting(t *testing.T) {
	t.Parallel()
	require.Equal(t, `"greptime_metakv"`, QuoteIdent("greptime_metakv"))
	require.Equal(t, `"we""ird"`, QuoteIdent(`we"ird`))
	require.Equal(t, `"s1"."t"`, QualifiedTable("s1", "t"))
	require.Equal(t, `"t"`, QualifiedTable("", "t"))
}

// A password from PGPASSWORD or PGPASSFILE is used for the connection and
// never appears in what is logged or returned as an error.
func TestConnConfigPasswordFromEnvironment(t *testing.T) {
	t.Setenv("PGPASSFILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("PGPASSWORD", "EnvSecret9")
	cc, err := ConnConfig(opts("postgres://u@db1:5432/meta", "postgres://u@db2:5432/meta"), "")
	require.NoError(t, err)
	require.Equal(t, "EnvSecret9", cc.Password)
	require.Equal(t, "u@db1:5432,db2:5432/meta", Describe(cc.Config))

	_, err = ConnConfig(opts("postgres://u@db1:5432/meta", "postgres://other@db2:5432/meta"), "")
	require.ErrorContains(t, err, "user, password or database differ")
	require.NotContains(t, err.Error(), "EnvSecret9")

	t.Setenv("PGPASSWORD", "")
	passfile := filepath.Join(t.TempDir(), "pgpass")
	require.NoError(t, os.WriteFile(passfile, []byte("db1:5432:meta:u:FileSecret9\n"), 0o600))
	t.Setenv("PGPASSFILE", passfile)
	cc, err = ConnConfig(opts("postgres://u@db1:5432/meta"), "")
	require.NoError(t, err)
	require.Equal(t, "FileSecret9", cc.Password)
	require.NotContains(t, Describe(cc.Config), "FileSecret9")
}
