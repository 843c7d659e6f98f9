package greptime

import (
	"testing"

	"github.com/pgmetasrv/metasrv/internal/pgtest"
)

// TestMain gives the tests PostgreSQL and fails the run when goroutines
// (fake nodes, connections, process waiters) outlive them.
func TestMain(m *testing.M) { pgtest.MainCheckLeaks(m) }
