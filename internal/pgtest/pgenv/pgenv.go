// Package pgenv hides the machine's libpq environment from a test, so that
// what pgconn.ParseConfig reads (PG* variables, ~/.pgpass, ~/.postgresql)
// is what the test sets and nothing else.
package pgenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Isolate empties every PG* variable, points HOME and PGPASSFILE at an
// empty temporary directory, and fixes the default user to "tester". It uses
// t.Setenv, so a test calling it cannot be parallel.
func Isolate(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "PG") {
			t.Setenv(name, "") // pgconn ignores empty variables
		}
	}
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("PGPASSFILE", filepath.Join(home, "no-such-pgpass"))
	t.Setenv("PGUSER", "tester")
}
