package postgres

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/internal/pgtest/pgenv"
)

func TestSanitizeStoreAddr(t *testing.T) {
	pgenv.Isolate(t)
	tests := []struct{ in, want string }{
		// A backslash-escaped space is part of a key=value password.
		{`host=127.0.0.1 user=u password=Open\ Sesame_77 dbname=m`, "postgres://u:*****@127.0.0.1:5432/m?sslmode=prefer"},
		{"postgres://u:secret@h:5432/db", "postgres://u:*****@h:5432/db?sslmode=prefer"},
		{"postgres://h/db?password=secret&sslmode=disable", "postgres://tester:*****@h:5432/db?sslmode=disable"},
		{"postgresql://u:p%40ss@h1:5432,h2:5433/db", "postgres://u:*****@h1:5432,h2:5433/db?sslmode=prefer"},
		{"host=h user=u password=secret dbname=d", "postgres://u:*****@h:5432/d?sslmode=prefer"},
		{`host=h password = 'a b\' c' dbname=d`, "postgres://tester:*****@h:5432/d?sslmode=prefer"},
		{"host=h user=u sslpassword=keysecret dbname=d sslmode=require", "postgres://u:*****@h:5432/d?sslmode=require"},
		{"postgres://u:secret@[::1]:5433/db?sslmode=verify-full&target_session_attrs=read-write&connect_timeout=3&application_name=ops",
			"postgres://u:*****@[::1]:5433/db?application_name=ops&connect_timeout=3&sslmode=verify-full&target_session_attrs=read-write"},
		{"host=/tmp,h2 port=5432,5433 user=u password=secret dbname='my db'", "host=/tmp,h2 port=5432,5433 user=u password=***** dbname='my db' sslmode=prefer"},
		{"postgres://u:secret@h/db?sslmode=allow", "postgres://u:*****@h:5432/db?sslmode=allow"},
		// No password in the address: shown as written.
		{"postgres://u@h/db", "postgres://u@h/db"},
		{"host=h dbname=d sslmode=require", "host=h dbname=d sslmode=require"},
		// Not parsable: never echoed.
		{"postgres:/u:secret@h/db", "(invalid address, not shown)"},
		{"u:secret@h:5432/db", "(invalid address, not shown)"},
		{"postgres://u:Pa@ss_Secret1@h:5432/db", "(invalid address, not shown)"},
		{"postgres://u:sec%zzret@h/db", "(invalid address, not shown)"},
	}
	for _, tc := range tests {
		got := SanitizeStoreAddr(tc.in)
		require.Equal(t, tc.want, got, tc.in)
		for _, secret := range []string{"secret", "Sesame", "ss_Secret1", "a b"} {
			if strings.Contains(tc.in, secret) {
				require.NotContains(t, got, secret, tc.in)
			}
		}
		// A masked address still parses, to the same hosts, user and database.
		if got != tc.in && !strings.HasPrefix(got, "(") {
			orig, err := ParseStoreAddr(tc.in)
			require.NoError(t, err, tc.in)
			back, err := ParseStoreAddr(got)
			require.NoError(t, err, got)
			require.Equal(t, Describe(*orig), Describe(*back), got)
			require.Equal(t, sslMode(orig), sslMode(back), got)
			require.Equal(t, Masked, back.Password, got)
		}
	}
}

// A password from PGPASSWORD or the password file is used (pgconn reads
// them) but is not part of the address, so it is never shown.
func TestPasswordFromEnvironmentOrPassfileNotShown(t *testing.T) {
	pgenv.Isolate(t)
	const addr = "postgres://u@h:5432/db"

	t.Setenv("PGPASSWORD", "EnvSecret9")
	c, err := ParseStoreAddr(addr)
	require.NoError(t, err)
	require.Equal(t, "EnvSecret9", c.Password, "the password comes from PGPASSWORD")
	require.Equal(t, addr, SanitizeStoreAddr(addr))
	require.NotContains(t, Describe(*c), "EnvSecret9")

	t.Setenv("PGPASSWORD", "")
	passfile := filepath.Join(t.TempDir(), "pgpass")
	require.NoError(t, os.WriteFile(passfile, []byte("h:5432:db:u:FileSecret9\n"), 0o600))
	t.Setenv("PGPASSFILE", passfile)
	c, err = ParseStoreAddr(addr)
	require.NoError(t, err)
	require.Equal(t, "FileSecret9", c.Password, "the password comes from PGPASSFILE")
	require.Equal(t, addr, SanitizeStoreAddr(addr))
	require.NotContains(t, Describe(*c), "FileSecret9")

	// passfile= in the address names a file, not a secret: shown as written.
	withFile := "host=h port=5432 user=u dbname=db passfile=" + passfile
	require.Equal(t, withFile, SanitizeStoreAddr(withFile))
	_, err = ParseStoreAddr(withFile)
	require.NoError(t, err)
}

// Parse errors never carry the address or a fragment of it, whatever pgconn
// quotes in its message.
func TestParseStoreAddrErrorsHideInput(t *testing.T) {
	t.Parallel()
	const secret = "Sesame77"
	tests := []struct{ in, want string }{
		{"postgres:/u:" + secret + "@h/db", "failed to parse as keyword/value: invalid keyword/value"},
		{"u:" + secret + "@h:5432/db", "failed to parse as keyword/value: invalid keyword/value"},
		{"postgres://u:Pa@" + secret + "@h:5432/db", `a host name contains "@"; in a URL, write an "@" of the user name or password as %40`},
		{"postgres://u:" + secret + "@h:notaport/db", "invalid port"},
		{"postgres://u:Ses%zzame77@h/db", "failed to parse as URL"},
		{"host=h password=Open " + secret + " dbname=m", `missing "=" after "…"`},
		{"host=h password='" + secret, "unterminated quoted string"},
		{"host=h password=" + secret + " sslmode=bogus", "failed to configure TLS: sslmode is invalid"},
		{"postgres://u:x@h/db?target_session_attrs=" + secret, "unknown target_session_attrs value: …"},
		{"postgres://u@h/db?" + secret, "failed to parse as URL"},
		{"postgres://u:x@h/db?connect_timeout=" + secret, "invalid connect_timeout"},
		{"host=h password=x min_protocol_version=" + secret, "invalid min_protocol_version"},
		{"host=h,h2 port=1,2,3 password=" + secret, "could not match 3 port numbers to 2 hosts"},
	}
	for _, tc := range tests {
		_, err := ParseStoreAddr(tc.in)
		require.Error(t, err, tc.in)
		var ae *AddrError
		require.ErrorAs(t, err, &ae)
		require.True(t, strings.HasPrefix(err.Error(), "not a valid PostgreSQL connection string ("), err.Error())
		require.Contains(t, err.Error(), tc.want, tc.in)
		for _, frag := range []string{secret, "Sesame", "zzame", "%zz"} {
			require.NotContains(t, err.Error(), frag, tc.in)
		}
	}
}
