package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// testPKI is a CA with one server and one client certificate, written as
// PEM files.
type testPKI struct {
	pool                          *x509.CertPool
	server                        tls.Certificate
	caFile, clientCert, clientKey string
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)

	issue := func(serial int64, usage x509.ExtKeyUsage, dnsNames []string) (certPEM, keyPEM []byte) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "test"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			ExtKeyUsage: []x509.ExtKeyUsage{usage}, DNSNames: dnsNames,
			KeyUsage: x509.KeyUsageDigitalSignature,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		require.NoError(t, err)
		keyDER, err := x509.MarshalECPrivateKey(key)
		require.NoError(t, err)
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
			pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	}
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, data, 0o600))
		return p
	}
	p := testPKI{pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	p.caFile = write("ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}))
	serverCert, serverKey := issue(2, x509.ExtKeyUsageServerAuth, []string{"metasrv.test"})
	p.server, err = tls.X509KeyPair(serverCert, serverKey)
	require.NoError(t, err)
	clientCert, clientKey := issue(3, x509.ExtKeyUsageClientAuth, nil)
	p.clientCert, p.clientKey = write("client.pem", clientCert), write("client-key.pem", clientKey)
	return p
}

// A server that verifies client certificates: ctl connects with the CA,
// server name and client pair, and is refused without them.
func TestCtlMutualTLS(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	creds := credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{pki.server},
		ClientCAs:    pki.pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
	})
	tc := newCtlCluster(t, 1, grpc.Creds(creds))
	tc.elect(0)
	ep := tc.endpoints(0)
	secure := []string{"--tls-ca", pki.caFile, "--tls-server-name", "metasrv.test", "--tls-cert", pki.clientCert, "--tls-key", pki.clientKey}

	ctl(t, ep, append(secure, "kv", "put", "k", "v")...).ok(t)
	require.Equal(t, "v\n", ctl(t, ep, append(secure, "kv", "get", "k")...).ok(t).stdout)

	short := func(args ...string) ctlResult {
		return ctlEnv(t, nil, append([]string{"ctl", "--endpoints", ep, "--timeout", "2s"}, args...)...)
	}
	// pkg/client reports a failed handshake as "connection failed", without
	// the TLS reason.
	short("leader").fails(t, "connection failed")
	short("--tls-ca", pki.caFile, "--tls-server-name", "metasrv.test", "leader").fails(t, "connection failed")
	short("--tls-ca", pki.caFile, "--tls-server-name", "wrong.name", "--tls-cert", pki.clientCert, "--tls-key", pki.clientKey, "leader").fails(t, "connection failed")
}
