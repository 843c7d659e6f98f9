package postgres

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// testCA is a throwaway certificate authority made by the test.
type testCA struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM []byte
}

// keyPair is an issued certificate and its key, PEM encoded.
type keyPair struct {
	certPEM, keyPEM []byte
}

func newCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return &testCA{cert: cert, key: key, certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue signs a certificate for cn; dnsNames/ips make it a server
// certificate, none a client certificate.
func (ca *testCA) issue(t *testing.T, cn string, dnsNames []string, ips []net.IP) keyPair {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	require.NoError(t, err)
	usage := x509.ExtKeyUsageClientAuth
	if len(dnsNames)+len(ips) > 0 {
		usage = x509.ExtKeyUsageServerAuth
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		DNSNames:     dnsNames,
		IPAddresses:  ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	return keyPair{
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}
}

// pgxConnConfigView summarises the connection attempts of a config.
type pgxConnConfigView struct {
	attempts    []string // host:tls or host:plain, in order
	serverNames []string // ServerName of each TLS attempt
	first       *tls.Config
}

func view(cc *pgx.ConnConfig) *pgxConnConfigView {
	v := &pgxConnConfigView{first: cc.TLSConfig}
	add := func(host string, tc *tls.Config) {
		kind := "plain"
		if tc != nil {
			kind = "tls"
			v.serverNames = append(v.serverNames, tc.ServerName)
		}
		v.attempts = append(v.attempts, host+":"+kind)
	}
	add(cc.Host, cc.TLSConfig)
	for _, f := range cc.Fallbacks {
		add(f.Host, f.TLSConfig)
	}
	return v
}

// syncBuffer collects log output written from other goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// defaultOptions are the pool settings of metasrv's default configuration
// (config.Default: postgres.*), which the tests assume.
func defaultOptions() Options {
	return Options{
		MaxConns:        32,
		MinConns:        2,
		MaxConnLifetime: time.Hour,
		MaxConnIdleTime: 10 * time.Minute,
		ConnectTimeout:  5 * time.Second,
	}
}
