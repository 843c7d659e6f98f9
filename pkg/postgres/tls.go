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
)

// TLS modes of TLSOptions.Mode, libpq's sslmode values with '_' for '-'
// (as TOML keys are written). libpq's spellings (verify-full) are accepted too
// and mapped to them (CanonicalTLSMode).
const (
	TLSDisable    = "disable"
	TLSAllow      = "allow"
	TLSPrefer     = "prefer"
	TLSRequire    = "require"
	TLSVerifyCA   = "verify_ca"
	TLSVerifyFull = "verify_full"
)

// TLSModesHelp lists the accepted TLS modes for messages.
const TLSModesHelp = "disable, allow, prefer, require, verify_ca or verify_full; libpq's verify-ca and verify-full are accepted too"

// CanonicalTLSMode maps a TLS mode, in this project's spelling or libpq's
// sslmode spelling, to its canonical constant. "" (leave TLS to the
// address's sslmode) is valid and stays "". ok is false for an unknown mode.
func CanonicalTLSMode(mode string) (canonical string, ok bool) {
	switch mode {
	case "", TLSDisable, TLSAllow, TLSPrefer, TLSRequire, TLSVerifyCA, TLSVerifyFull:
		return mode, true
	case "verify-ca":
		return TLSVerifyCA, true
	case "verify-full":
		return TLSVerifyFull, true
	}
	return mode, false
}

// TLSOptions configure TLS to PostgreSQL (backend_tls). An empty Mode leaves
// TLS to the store address (its sslmode), as libpq would.
type TLSOptions struct {
	Mode       string
	CACertPath string
	CertPath   string
	KeyPath    string
}

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
func applyTLS(c *pgx.ConnConfig, t TLSOptions) error {
	mode, ok := CanonicalTLSMode(t.Mode)
	if !ok {
		return fmt.Errorf("backend_tls.mode: unknown mode %q (expected %s)", t.Mode, TLSModesHelp)
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
	hosts := distinctHosts(&c.Config)
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
func baseTLS(t TLSOptions) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	switch t.Mode {
	case TLSDisable:
		return nil, nil
	case TLSAllow, TLSPrefer, TLSRequire, TLSVerifyCA, TLSVerifyFull:
	default:
		return nil, fmt.Errorf("backend_tls.mode: unknown mode %q (expected %s)", t.Mode, TLSModesHelp)
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
	verifyChain := t.Mode == TLSVerifyCA ||
		// libpq: with a root certificate, require (and prefer, allow) verify the chain.
		(t.Mode == TLSRequire || t.Mode == TLSPrefer || t.Mode == TLSAllow) && t.CACertPath != ""
	switch {
	case t.Mode == TLSVerifyFull:
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
	if mode == TLSDisable || strings.HasPrefix(host, "/") {
		return []*tls.Config{nil}
	}
	tc := base.Clone()
	tc.ServerName = host
	switch mode {
	case TLSPrefer:
		return []*tls.Config{tc, nil}
	case TLSAllow:
		return []*tls.Config{nil, tc}
	}
	return []*tls.Config{tc}
}
