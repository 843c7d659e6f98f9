package postgres

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgmetasrv/metasrv/pkg/config"
)

// applyTLS replaces the TLS settings of every host with backend_tls, with
// libpq's sslmode meaning:
//
//	disable      plain connections only
//	allow        plain, falling back to TLS without verification
//	prefer       TLS without verification, falling back to plain
//	require      TLS without verification; with a CA file, the chain is verified (as libpq does)
//	verify_ca    TLS, chain verified against the CA, host name not checked
//	verify_full  TLS, chain and host name verified
//
// libpq's spellings verify-ca and verify-full are accepted as verify_ca and
// verify_full. An empty mode keeps what each address's sslmode says.
func applyTLS(c *pgx.ConnConfig, t config.BackendTLSOptions) error {
	mode, ok := config.CanonicalTLSMode(t.Mode)
	if !ok {
		return fmt.Errorf("backend_tls.mode: unknown mode %q (expected %s)", t.Mode, config.TLSModesHelp)
	}
	t.Mode = mode
	if t.Mode == "" {
		if t.CACertPath != "" || t.CertPath != "" || t.KeyPath != "" {
			return errors.New("backend_tls: certificate paths are set but backend_tls.mode is empty; set mode (require, verify_ca or verify_full) or remove the paths")
		}
		return nil
	}
	base, err := baseTLS(t)
	if err != nil {
		return err
	}
	hosts := hostsOf(c)
	var variants []*pgconn.FallbackConfig
	for _, h := range hosts {
		for _, tc := range tlsVariants(t.Mode, base, h.host) {
			variants = append(variants, &pgconn.FallbackConfig{Host: h.host, Port: h.port, TLSConfig: tc})
		}
	}
	c.Host, c.Port, c.TLSConfig = variants[0].Host, variants[0].Port, variants[0].TLSConfig
	c.Fallbacks = variants[1:]
	return nil
}

// baseTLS loads the CA and client certificate once for all hosts and sets
// the verification of the mode. ServerName is filled in per host.
func baseTLS(t config.BackendTLSOptions) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	switch t.Mode {
	case config.TLSDisable:
		return nil, nil
	case config.TLSAllow, config.TLSPrefer, config.TLSRequire, config.TLSVerifyCA, config.TLSVerifyFull:
	default:
		return nil, fmt.Errorf("backend_tls.mode: unknown mode %q (expected %s)", t.Mode, config.TLSModesHelp)
	}
	if t.CACertPath != "" {
		pem, err := os.ReadFile(t.CACertPath)
		if err != nil {
			return nil, fmt.Errorf("backend_tls.ca_cert_path: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("backend_tls.ca_cert_path %s: no PEM certificate found", t.CACertPath)
		}
		tc.RootCAs = pool
	}
	if (t.CertPath == "") != (t.KeyPath == "") {
		return nil, errors.New("backend_tls: cert_path and key_path must be set together (client certificate and its key)")
	}
	if t.CertPath != "" {
		cert, err := tls.LoadX509KeyPair(t.CertPath, t.KeyPath)
		if err != nil {
			return nil, fmt.Errorf("backend_tls.cert_path/key_path: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	verifyChain := t.Mode == config.TLSVerifyCA ||
		// libpq: with a root certificate, require (and prefer, allow) verify the chain.
		(t.Mode == config.TLSRequire || t.Mode == config.TLSPrefer || t.Mode == config.TLSAllow) && t.CACertPath != ""
	switch {
	case t.Mode == config.TLSVerifyFull:
		// Go's default verification: chain against RootCAs (system pool if
		// none given) and ServerName.
	case verifyChain:
		roots := tc.RootCAs
		if roots == nil {
			sys, err := x509.SystemCertPool()
			if err != nil {
				return nil, fmt.Errorf("backend_tls: load system CA pool for %s: %w", t.Mode, err)
			}
			roots = sys
		}
		tc.InsecureSkipVerify = true // hostname not checked; the chain is, below
		tc.VerifyConnection = func(cs tls.ConnectionState) error { return verifyChainOnly(cs, roots) }
	default:
		tc.InsecureSkipVerify = true
	}
	return tc, nil
}

func verifyChainOnly(cs tls.ConnectionState, roots *x509.CertPool) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("server sent no TLS certificate")
	}
	opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool()}
	for _, c := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	if _, err := cs.PeerCertificates[0].Verify(opts); err != nil {
		return fmt.Errorf("verify server certificate chain: %w", err)
	}
	return nil
}

// tlsVariants are the connection attempts for one host, in order; nil means
// plain text. Unix sockets never use TLS.
func tlsVariants(mode string, base *tls.Config, host string) []*tls.Config {
	if mode == config.TLSDisable || strings.HasPrefix(host, "/") {
		return []*tls.Config{nil}
	}
	tc := base.Clone()
	tc.ServerName = host
	switch mode {
	case config.TLSPrefer:
		return []*tls.Config{tc, nil}
	case config.TLSAllow:
		return []*tls.Config{nil, tc}
	}
	return []*tls.Config{tc}
}
