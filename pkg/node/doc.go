// Package node is metasrv's composition root, in the shape of etcd's embed:
// a Config goes in, and out comes one node put together from the store, the
// election, the core with its leader-only work, and the servers in front of
// them. The binary (cmd/metasrv) and every test that needs a real node use it,
// so there is one wiring.
//
// # Lifecycle
//
//   - New builds every part and binds the node's addresses: it reserves the
//     gRPC address and the HTTP admin address first (port 0 is resolved
//     here), so GRPCAddr, HTTPAddr and Advertised are known values from then
//     on. For postgres_store the HTTP address is held by a small admin server
//     that answers liveness, readiness (503, with the reason) and /metrics
//     while New waits, with backoff, for PostgreSQL; New then runs the
//     migrations. Nothing else is served until Start.
//   - Start hands the bound listeners to the gRPC and HTTP servers (the
//     early admin stops and leaves its listener open; the servers serve the
//     same sockets, so the ports are never free in between), starts the group-commit batcher and
//     then the core, which joins the election. When Start returns nil the
//     node serves and ReadyNotify's channel is closed. Leadership comes
//     later, from the election; /admin/ready tells when a leader is known.
//   - Err delivers an error if a server stops serving on its own; the owner
//     should then Stop the node.
//   - Stop is graceful, then hard: it resigns and stops leader work (bounded
//     by its context) so a follower takes over while this node still drains
//     its calls; then it stops the batcher (queued writes fail, one in
//     flight fails or reports kv.ErrOutcomeUnknown), stops the servers
//     (in-flight calls get server.DefaultShutdownTimeout, then are cut), and
//     closes the PostgreSQL pool. Stop may be called before Start, after a
//     failed Start, and more than once: later calls return the first
//     call's result.
//
// # Failures
//
//   - New: a bad TLS file, a metric that will not register or an address in
//     use fails at once; for postgres_store, PostgreSQL being down is waited
//     for until ctx ends (ctx's error is returned), and a failed migration is
//     returned wrapped with "migrate". Whatever New opened before failing is
//     released before it returns (one deferred cleanup), so a failed New
//     needs no Stop.
//   - Start: a server that cannot bind (the reserved address taken in the
//     instant between reservation and bind) or an election that will not
//     start undoes what Start started and returns the error; the node must
//     then be Stopped to release the rest.
//   - Stop: when ctx ends before leader work has stopped, Stop still stops
//     the batcher and the servers, waits hardStopWait more for the core,
//     and returns ctx's error; if the core is still not done the pool is
//     left open (closing it would wait on the core's connections) and the
//     process is expected to exit.
package node
