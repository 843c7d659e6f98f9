// Package proccluster runs programs as child processes and injects faults
// into them: Slot is one process slot (start, signal, pause, kill,
// restart), Node is a metasrv node in a slot with fixed addresses, and
// Cluster is a set of nodes on one PostgreSQL, each optionally behind its
// own partitionable proxy (internal/netproxy). It serves the failover
// benchmark (cmd/metasrv-bench), the fault suite (test/chaos) and the
// election's failover measurement; the production binary must not link it.
package proccluster
