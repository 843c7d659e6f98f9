package config

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLoadServerKeys(t *testing.T) {
	t.Parallel()
	path := writeFile(t, `
[grpc]
max_recv_message_size = "32MiB"
max_send_message_size = "128MiB"
[grpc.tls]
cert_path = "/etc/metasrv/grpc.crt"
key_path = "/etc/metasrv/grpc.key"
ca_cert_path = "/etc/metasrv/clients-ca.crt"
[http]
body_limit = "256KiB"
[http.tls]
cert_path = "/etc/metasrv/http.crt"
key_path = "/etc/metasrv/http.key"
`)
	env := []string{"METASRV_HTTP__ADMIN_TOKEN=0123456789abcdef0123", "METASRV_HTTP__TLS__CA_CERT_PATH=/etc/metasrv/admin-ca.crt"}
	o, err := Load(path, nil, env)
	require.NoError(t, err)
	require.NoError(t, o.Validate())
	require.Equal(t, 32*MiB, o.GRPC.MaxRecvMessageSize)
	require.Equal(t, 128*MiB, o.GRPC.MaxSendMessageSize)
	require.Equal(t, ServerTLSOptions{CertPath: "/etc/metasrv/grpc.crt", KeyPath: "/etc/metasrv/grpc.key", CACertPath: "/etc/metasrv/clients-ca.crt"}, o.GRPC.TLS)
	require.Equal(t, ServerTLSOptions{CertPath: "/etc/metasrv/http.crt", KeyPath: "/etc/metasrv/http.key", CACertPath: "/etc/metasrv/admin-ca.crt"}, o.HTTP.TLS)
	require.True(t, o.GRPC.TLS.Enabled())
	require.Equal(t, 256*KiB, o.HTTP.BodyLimit)
	require.Equal(t, "0123456789abcdef0123", o.HTTP.AdminToken)
}

func TestServerKeyDefaults(t *testing.T) {
	t.Parallel()
	d := Default()
	require.Equal(t, 16*MiB, d.GRPC.MaxRecvMessageSize)
	require.Equal(t, 64*MiB, d.GRPC.MaxSendMessageSize)
	require.Equal(t, 1*MiB, d.HTTP.BodyLimit)
	require.False(t, d.GRPC.TLS.Enabled())
	require.False(t, d.HTTP.TLS.Enabled())
	require.Empty(t, d.HTTP.AdminToken)
}

func TestGreptimeTLSModeRefused(t *testing.T) {
	t.Parallel()
	_, err := Load(writeFile(t, "[grpc.tls]\nmode = \"require\"\n"), nil, nil)
	require.ErrorIs(t, err, ErrUnsupportedKey)
	require.ErrorContains(t, err, "grpc.tls.mode is not supported by this metasrv; TLS is on when grpc.tls.cert_path and grpc.tls.key_path are set")
}

func TestAdminTokenNeverShown(t *testing.T) {
	t.Parallel()
	const secret = "s3cr3t-t0ken-value-XYZ"
	o := Default()
	o.HTTP.AdminToken = secret
	out, err := Render(o)
	require.NoError(t, err)
	require.False(t, bytes.Contains(out, []byte(secret)), "token leaked:\n%s", out)
	require.Contains(t, string(out), "admin_token = '*****'")
	require.Equal(t, secret, o.HTTP.AdminToken, "Render works on a copy")

	// An unset token renders empty, so the dump does not suggest one is set.
	out, err = Render(Default())
	require.NoError(t, err)
	require.Contains(t, string(out), "admin_token = ''")

	// A wrongly typed token in a file is refused without echoing it.
	path := filepath.Join(t.TempDir(), "m.toml")
	require.NoError(t, os.WriteFile(path, []byte("[http]\nadmin_token = [\"s3cr3t-t0ken-value-XYZ\"]\n"), 0o600))
	_, err = Load(path, nil, nil)
	require.ErrorIs(t, err, ErrInvalidValue)
	require.ErrorContains(t, err, "http.admin_token = (value hidden)")
	require.NotContains(t, err.Error(), secret)
}
