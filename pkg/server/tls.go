package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// TLSFiles name the PEM files of a server's TLS identity, as configured under
// Table (for example "grpc.tls"), which error messages use to name the key at
// fault.
type TLSFiles struct {
	Table      string
	CertPath   string
	KeyPath    string
	CACertPath string
}

// ClientCerts says what a TLS server asks of clients when a CA is configured.
type ClientCerts int

const (
	// RequireClientCerts refuses the handshake of a client without a
	// certificate signed by the CA (the gRPC server).
	RequireClientCerts ClientCerts = iota
	// VerifyClientCertsIfGiven verifies a certificate when one is presented
	// and lets clients without one in, so health checks and scrapers need no
	// certificate; the admin endpoints decide what such a client may do.
	VerifyClientCertsIfGiven
)

// ServerConfig reads the files and builds a server tls.Config: TLS 1.2 at
// least, and client certificates checked against CACertPath when it is set.
// It returns nil and no error when no certificate is configured (plaintext).
// Every error names the configuration key of the file that failed.
func (f TLSFiles) ServerConfig(clients ClientCerts) (*tls.Config, error) {
	if f.CertPath == "" && f.KeyPath == "" {
		if f.CACertPath != "" {
			return nil, fmt.Errorf("%s.ca_cert_path is set but %s.cert_path and %s.key_path are not: client certificates are only verified over TLS", f.Table, f.Table, f.Table)
		}
		return nil, nil
	}
	if f.CertPath == "" || f.KeyPath == "" {
		return nil, fmt.Errorf("%s.cert_path and %s.key_path must be set together", f.Table, f.Table)
	}
	certPEM, err := os.ReadFile(f.CertPath)
	if err != nil {
		return nil, fmt.Errorf("%s.cert_path: %w", f.Table, err)
	}
	keyPEM, err := os.ReadFile(f.KeyPath)
	if err != nil {
		return nil, fmt.Errorf("%s.key_path: %w", f.Table, err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s.cert_path %s with %s.key_path %s: %w", f.Table, f.CertPath, f.Table, f.KeyPath, err)
	}
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
	}
	if f.CACertPath == "" {
		return cfg, nil
	}
	caPEM, err := os.ReadFile(f.CACertPath)
	if err != nil {
		return nil, fmt.Errorf("%s.ca_cert_path: %w", f.Table, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("%s.ca_cert_path %s: %w", f.Table, f.CACertPath, errNoPEMCerts)
	}
	cfg.ClientCAs = pool
	switch clients {
	case VerifyClientCertsIfGiven:
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	default:
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

var errNoPEMCerts = errors.New("no PEM certificate found")
