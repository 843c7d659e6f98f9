package postgres

import (
	"testing"

	"github.com/pgmetasrv/metasrv/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.MainCheckLeaks(m) }
