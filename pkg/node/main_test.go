package node

import (
	"testing"

	"github.com/pgmetasrv/metasrv/internal/pgtest"
)

// Every test must stop what it starts: goleak fails the run otherwise.
func TestMain(m *testing.M) { pgtest.MainCheckLeaks(m) }
