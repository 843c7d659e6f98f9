package config

import (
	"strings"
	"unicode"
)

// MinAdminTokenLen is the shortest http.admin_token accepted: a token is the
// only thing between the network and the admin POST endpoints.
const MinAdminTokenLen = 16

func validateServerTLS(o Options) error {
	for _, t := range []struct {
		table string
		opts  ServerTLSOptions
	}{{"grpc.tls", o.GRPC.TLS}, {"http.tls", o.HTTP.TLS}} {
		c := t.opts
		if (c.CertPath == "") != (c.KeyPath == "") {
			if c.CertPath == "" {
				return invalid(t.table+".cert_path", "is required when %s.key_path is set", t.table)
			}
			return invalid(t.table+".key_path", "is required when %s.cert_path is set", t.table)
		}
		// Verifying clients needs a TLS server to ask them.
		if c.CACertPath != "" && c.CertPath == "" {
			return invalid(t.table+".ca_cert_path", "needs %s.cert_path and %s.key_path: client certificates are only verified over TLS", t.table, t.table)
		}
	}
	return nil
}

func validateServerLimits(o Options) error {
	// gRPC frames messages with a 32-bit length; metadata messages anywhere
	// near that are a mistake, so the cap is a round, safe 1GiB.
	const maxMsg = GiB
	for _, c := range []struct {
		key string
		v   ByteSize
	}{
		{"grpc.max_recv_message_size", o.GRPC.MaxRecvMessageSize},
		{"grpc.max_send_message_size", o.GRPC.MaxSendMessageSize},
	} {
		if c.v <= 0 || c.v > maxMsg {
			return invalid(c.key, "must be greater than 0B and at most %s, got %s", maxMsg, c.v)
		}
	}
	// A Put of the largest value the store accepts must fit in one request.
	if o.GRPC.MaxRecvMessageSize <= o.Procedure.MaxMetadataValueSize {
		return invalid("grpc.max_recv_message_size", "%s must be larger than procedure.max_metadata_value_size (%s), so a request carrying the largest allowed value fits",
			o.GRPC.MaxRecvMessageSize, o.Procedure.MaxMetadataValueSize)
	}
	if o.HTTP.BodyLimit <= 0 {
		return invalid("http.body_limit", "must be greater than 0B, got %s", o.HTTP.BodyLimit)
	}
	return nil
}

func validateAdminToken(o Options) error {
	tok := o.HTTP.AdminToken
	if tok == "" {
		return nil
	}
	// The value itself is never echoed: it is a credential.
	if len(tok) < MinAdminTokenLen {
		return invalid("http.admin_token", "is %d characters; use at least %d (for example: openssl rand -hex 32)", len(tok), MinAdminTokenLen)
	}
	if strings.IndexFunc(tok, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) >= 0 {
		return invalid("http.admin_token", "contains whitespace or control characters (a trailing newline from a file?); a bearer token is one printable word")
	}
	return nil
}
