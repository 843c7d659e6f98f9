package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// authorize guards a POST endpoint with the rule of the package comment.
func (h *handlers) authorize(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if h.auth.open() || verifiedClientCert(r) || h.tokenMatches(r) {
			next(w, r)
			return
		}
		h.log.WarnContext(r.Context(), "admin request refused: not authorised",
			"method", r.Method, "path", r.URL.Path, "remote_addr", r.RemoteAddr)
		var msg string
		switch {
		case h.auth.Token != "" && h.auth.ClientCerts:
			msg = "this endpoint needs \"Authorization: Bearer <http.admin_token>\" or a TLS client certificate signed by http.tls.ca_cert_path"
		case h.auth.Token != "":
			msg = "this endpoint needs \"Authorization: Bearer <http.admin_token>\""
		default:
			msg = "this endpoint needs a TLS client certificate signed by http.tls.ca_cert_path"
		}
		if h.auth.Token != "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="metasrv admin"`)
		}
		writeError(w, http.StatusUnauthorized, msg)
	}
}

// verifiedClientCert is true when the TLS handshake verified the client's
// certificate against the configured CA. crypto/tls only fills
// VerifiedChains after a successful verification, so a self-signed or
// unknown certificate does not count.
func verifiedClientCert(r *http.Request) bool {
	return r.TLS != nil && len(r.TLS.VerifiedChains) > 0
}

func (h *handlers) tokenMatches(r *http.Request) bool {
	if h.auth.Token == "" {
		return false
	}
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	// Comparing digests keeps the time independent of where the strings
	// differ and of the token's length.
	got := sha256.Sum256([]byte(strings.TrimSpace(token)))
	want := sha256.Sum256([]byte(h.auth.Token))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

// authMethod says how a request was authorised, for the audit log.
func (h *handlers) authMethod(r *http.Request) string {
	switch {
	case verifiedClientCert(r):
		return "client_cert:" + r.TLS.VerifiedChains[0][0].Subject.String()
	case h.tokenMatches(r):
		return "token"
	default:
		return "none"
	}
}
