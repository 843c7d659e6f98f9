package migration

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run when goroutines outlive the tests.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
