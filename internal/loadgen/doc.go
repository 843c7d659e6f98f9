// Package loadgen generates load on metasrv and on PostgreSQL and measures
// it: a closed-loop runner (Run) with per-worker latency histograms, and the
// key-value workload of `metasrv bench kv` (KV) with its raw-SQL baseline
// (RawPG). It links no fault-injection code, so the production binary may
// use it.
package loadgen
