// Package kvtest is the conformance suite for kv.Backend: one body of tests
// that every backend (memory_store, postgres_store) must pass unchanged, so
// the backends agree on every edge case of the contract in package kv.
//
// A backend's test calls Run with a factory returning a fresh, empty,
// isolated backend on every call:
//
//	func TestConformance(t *testing.T) {
//		kvtest.Run(t, func(t *testing.T) kv.Backend { return memkv.New() })
//	}
package kvtest

import (
	"testing"

	"github.com/pgmetasrv/metasrv/pkg/kv"
)

// The limits the suite wraps backends with (kv.WithLimits) for its limit
// cases; small so the cases stay cheap on a real database, except
// MaxKeySize, which is the real default so that every backend proves it
// stores keys that long.
const (
	MaxTxnOps    = 8
	MaxValueSize = 1024
	MaxKeySize   = kv.DefaultMaxKeySize
)

// Limits returns the kv.Limits built from MaxTxnOps, MaxValueSize and
// MaxKeySize.
func Limits() kv.Limits {
	return kv.Limits{MaxTxnOps: MaxTxnOps, MaxValueSize: MaxValueSize, MaxKeySize: MaxKeySize}
}

// Run runs every conformance case as a parallel subtest, each against its own
// backend from newBackend. newBackend must return a fresh, empty backend that
// no other call shares (it may register cleanups on the t it is given), raw:
// the suite adds kv.WithLimits and kv.WithPrefix itself where a case needs them.
func Run(t *testing.T, newBackend func(t *testing.T) kv.Backend) {
	t.Helper()
	groups := []struct {
		name  string
		cases []testCase
	}{
		{"Range", rangeCases()},
		{"RangeEdges", edgeCases()},
		{"Put", putCases()},
		{"Batch", batchCases()},
		{"DeleteRange", deleteRangeCases()},
		{"CompareAndPut", casCases()},
		{"Txn", txnCases()},
		{"Limits", limitCases()},
		{"Chroot", chrootCases()},
		{"Isolation", isolationCases()},
		{"Concurrency", concurrencyCases()},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, c := range g.cases {
				t.Run(c.name, func(t *testing.T) {
					t.Parallel()
					c.run(t, newBackend(t))
				})
			}
		})
	}
}

type testCase struct {
	name string
	run  func(t *testing.T, b kv.Backend)
}
