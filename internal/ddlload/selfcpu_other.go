//go:build !unix

package ddlload

import "time"

// selfCPU is not measured on this OS.
func selfCPU() (time.Duration, bool) { return 0, false }
