package config

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/internal/pgtest/pgenv"
)

func TestRenderMasksPasswords(t *testing.T) {
	pgenv.Isolate(t)
	o := Default()
	o.StoreAddrs = []string{
		"postgres://u:secret1@h/db",
		"postgres://u@h/db?sslmode=require&password=secret2",
		"host=h user=u password=secret3 dbname=d",
		"host=h password='sec ret4' dbname=d",
		`host=127.0.0.1 user=u password=Open\ Sesame_77 dbname=m`,
		"postgres://u:pass%77ord5@h/db",
	}
	out, err := Render(o)
	require.NoError(t, err)
	for _, s := range []string{"secret1", "secret2", "secret3", "sec ret4", "ret4", "Sesame", "pass"} {
		require.NotContains(t, string(out), s)
	}
	require.Contains(t, string(out), "'postgres://u:*****@h:5432/db?sslmode=prefer'")
	require.Contains(t, string(out), "'postgres://u:*****@127.0.0.1:5432/m?sslmode=prefer'")
	// Render works on a copy: the caller's options keep the real addresses.
	require.Equal(t, "postgres://u:secret1@h/db", o.StoreAddrs[0])

	// The output is a valid --config file.
	path := filepath.Join(t.TempDir(), "rendered.toml")
	require.NoError(t, os.WriteFile(path, out, 0o600))
	back, err := Load(path, nil, nil)
	require.NoError(t, err)
	require.NoError(t, back.Validate())
}

// A password from PGPASSWORD or the password file is used (pgconn reads
// them) but is not part of the address, so Render never shows it.
func TestRenderHidesPasswordFromEnvironmentOrPassfile(t *testing.T) {
	pgenv.Isolate(t)
	o := Default()
	o.StoreAddrs = []string{"postgres://u@h:5432/db"}

	t.Setenv("PGPASSWORD", "EnvSecret9")
	out, err := Render(o)
	require.NoError(t, err)
	require.NotContains(t, string(out), "EnvSecret9")

	t.Setenv("PGPASSWORD", "")
	passfile := filepath.Join(t.TempDir(), "pgpass")
	require.NoError(t, os.WriteFile(passfile, []byte("h:5432:db:u:FileSecret9\n"), 0o600))
	t.Setenv("PGPASSFILE", passfile)
	out, err = Render(o)
	require.NoError(t, err)
	require.NotContains(t, string(out), "FileSecret9")

	o.StoreAddrs = []string{"host=h port=5432 user=u dbname=db passfile=" + passfile}
	require.NoError(t, o.Validate())
}
