// Package chaos is the fault and linearizability suite of metasrv. Its tests
// run three metasrv processes on a throwaway PostgreSQL (each node reaching
// it through its own blackhole-capable proxy), drive concurrent clients
// through pkg/client while a nemesis kills, pauses and partitions the leader
// and restarts PostgreSQL, then check the recorded history with porcupine
// against a key-value model and compare PostgreSQL's rows with the final
// linearizable reads. The package holds no code outside its tests.
//
// TestStorm needs no fault: many goroutines call with deadlines of a few
// milliseconds, so most calls are abandoned mid-write, and the leader's
// answers are then compared with PostgreSQL key by key.
//
// The short version (three rounds of every fault, about a minute) runs by
// default with `go test ./...` and is skipped with -short. Knobs, all
// optional:
//
//	METASRV_CHAOS_DURATION=10m  the long version: faults until then (`go tool task chaos`)
//	METASRV_CHAOS_CLIENTS=6     concurrent clients
//	METASRV_CHAOS_LEASE=1s      election.lease of the nodes
//	METASRV_CHAOS_SEED=N        repeat a run's random choices (each run prints its seed)
//	METASRV_CHAOS_KEEP=1        keep the output directory (node logs) after a pass
//	METASRV_CHAOS_BIN=path      run this metasrv binary instead of building cmd/metasrv
//	METASRV_CHAOS_RACE=1        build the nodes with the race detector
//	METASRV_STORM_RUNS=20       repeat TestStorm, the impatient-client storm (long version: 200 goroutines, 10s each)
//
// On failure the output directory (node logs and, per key whose history is
// not linearizable, porcupine's HTML visualisation with the faults marked)
// is kept under $TMPDIR and its path printed.
package chaos
