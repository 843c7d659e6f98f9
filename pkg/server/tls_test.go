package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
	path string // the CA certificate's PEM file
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	ca := &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
	ca.path = writePEM(t, name+"-ca.crt", ca.pem)
	return ca
}

func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// issued is a leaf certificate with its key, as files and as a tls.Certificate.
type issued struct {
	certPath, keyPath string
	tls               tls.Certificate
}

func (ca *testCA) issue(t *testing.T, cn string, usage x509.ExtKeyUsage) issued {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	require.NoError(t, err)
	return issued{
		certPath: writePEM(t, cn+".crt", certPEM),
		keyPath:  writePEM(t, cn+".key", keyPEM),
		tls:      pair,
	}
}

func writePEM(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, data, 0o600))
	return path
}

func TestServerConfigFromFiles(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t, "metasrv")
	srv := ca.issue(t, "server", x509.ExtKeyUsageServerAuth)

	cfg, err := TLSFiles{Table: "grpc.tls"}.ServerConfig(RequireClientCerts)
	require.NoError(t, err)
	require.Nil(t, cfg, "no certificate: plaintext")

	cfg, err = TLSFiles{Table: "grpc.tls", CertPath: srv.certPath, KeyPath: srv.keyPath}.ServerConfig(RequireClientCerts)
	require.NoError(t, err)
	require.Equal(t, uint16(tls.VersionTLS12), cfg.MinVersion)
	require.Equal(t, tls.NoClientCert, cfg.ClientAuth)

	files := TLSFiles{Table: "grpc.tls", CertPath: srv.certPath, KeyPath: srv.keyPath, CACertPath: ca.path}
	cfg, err = files.ServerConfig(RequireClientCerts)
	require.NoError(t, err)
	require.Equal(t, tls.RequireAndVerifyClientCert, cfg.ClientAuth)
	require.NotNil(t, cfg.ClientCAs)
	cfg, err = files.ServerConfig(VerifyClientCertsIfGiven)
	require.NoError(t, err)
	require.Equal(t, tls.VerifyClientCertIfGiven, cfg.ClientAuth)

	missing := filepath.Join(t.TempDir(), "missing.pem")
	notPEM := writePEM(t, "garbage.pem", []byte("not a certificate"))
	cases := []struct {
		name  string
		files TLSFiles
		want  string
	}{
		{"missing cert", TLSFiles{Table: "http.tls", CertPath: missing, KeyPath: srv.keyPath}, "http.tls.cert_path: open " + missing},
		{"missing key", TLSFiles{Table: "http.tls", CertPath: srv.certPath, KeyPath: missing}, "http.tls.key_path: open " + missing},
		{"key does not match", TLSFiles{Table: "http.tls", CertPath: srv.certPath, KeyPath: ca.issue(t, "other", x509.ExtKeyUsageServerAuth).keyPath}, "http.tls.cert_path " + srv.certPath + " with http.tls.key_path"},
		{"missing ca", TLSFiles{Table: "grpc.tls", CertPath: srv.certPath, KeyPath: srv.keyPath, CACertPath: missing}, "grpc.tls.ca_cert_path: open " + missing},
		{"ca not pem", TLSFiles{Table: "grpc.tls", CertPath: srv.certPath, KeyPath: srv.keyPath, CACertPath: notPEM}, "grpc.tls.ca_cert_path " + notPEM + ": no PEM certificate found"},
		{"cert without key", TLSFiles{Table: "grpc.tls", CertPath: srv.certPath}, "grpc.tls.cert_path and grpc.tls.key_path must be set together"},
		{"ca without cert", TLSFiles{Table: "grpc.tls", CACertPath: ca.path}, "grpc.tls.ca_cert_path is set but"},
	}
	for _, c := range cases {
		_, err := c.files.ServerConfig(RequireClientCerts)
		require.ErrorContains(t, err, c.want, c.name)
	}
}
