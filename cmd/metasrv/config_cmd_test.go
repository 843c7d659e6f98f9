package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// Every form of password PostgreSQL accepts is masked by `config`; an
// address that does not parse is refused by index and never echoed, by
// `config` and by `start` alike.
func TestConfigNeverPrintsPasswords(t *testing.T) {
	t.Parallel()
	r := runBinary(t, []string{"PGUSER=tester"}, "config", "--store-addrs", `host=127.0.0.1 user=u password=Open\ Sesame_77 dbname=m`)
	require.Equal(t, 0, r.code, r.stderr)
	require.NotContains(t, r.stdout+r.stderr, "Sesame")
	require.Contains(t, r.stdout, "'postgres://u:*****@127.0.0.1:5432/m?sslmode=prefer'")

	for _, addr := range []string{
		"postgres:/u:secret@h/db",
		"u:secret@h:5432/db",
		"postgres://u:Pa@ss_Secret1@h:5432/db",
	} {
		for _, cmd := range []string{"config", "start"} {
			r := runBinary(t, nil, cmd, "--backend", "postgres_store", "--store-addrs", addr)
			requireFailure(t, r, "store_addrs[0]: not a valid PostgreSQL connection string (")
			require.NotContains(t, r.stdout+r.stderr, "secret", addr)
			require.NotContains(t, r.stdout+r.stderr, "Secret1", addr)
		}
	}

	// A password from the environment is used, never printed.
	r = runBinary(t, []string{"PGPASSWORD=EnvSecret9"}, "config", "--store-addrs", "postgres://u@h:5432/db")
	require.Equal(t, 0, r.code, r.stderr)
	require.NotContains(t, r.stdout+r.stderr, "EnvSecret9")
	require.Contains(t, r.stdout, "'postgres://u@h:5432/db'")
}

// backend_tls.mode takes libpq's spellings and prints the canonical one.
func TestConfigBackendTLSModeLibpqSpelling(t *testing.T) {
	t.Parallel()
	cfg := effective(t, nil, "--config", writeConfig(t, "[backend_tls]\nmode = \"verify-full\"\nca_cert_path = \"/ca.crt\"\n"))
	require.Equal(t, "verify_full", cfg["backend_tls"].(map[string]any)["mode"])
}
