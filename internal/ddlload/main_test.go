package ddlload

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run when goroutines outlive the tests: a run stops
// every datanode and connection it made.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
