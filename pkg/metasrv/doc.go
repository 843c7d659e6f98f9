// Package metasrv is the core of a metadata server node: it follows the
// election and, while it leads, owns the leader cache, the in-memory KV and
// the leader-only work (leadership listeners such as the procedure manager).
//
// # States
//
//	            Elected{t}                 cache loaded
//	Follower ──────────────▶ LeaderNotReady ─────────────▶ LeaderReady
//	    ▲                         │   ▲                        │
//	    │       StepDown{t}       │   │ cache invalidated      │
//	    └─────────────────────────┴───┴────────────────────────┘
//
// The leadership watcher is the only goroutine that changes terms. It reads
// the election's stream in order, so a StepDown is always handled after the
// Elected of the same term, and on every message it replaces the in-memory
// KV. On Elected{t} it creates the term: a fresh leader cache, a term context,
// and the term's store (reads from the cache, writes fenced by t). A term
// goroutine then loads the cache with paginated scans, marks the node ready,
// creates the default catalog and schema if missing, and starts the listeners
// in registration order. On StepDown{t} the watcher marks the node follower,
// cancels the term context and waits for the term goroutine, which stops the
// listeners in reverse order.
//
// # Failures
//
//   - Cache load or default-metadata creation fails: retried with backoff
//     until it succeeds or the term ends; leader-only calls are refused
//     meanwhile (NotLeaderError), never served from a partial cache.
//   - A listener fails to start: logged and retried in the background; the
//     listeners after it start anyway.
//   - The node loses its lease without hearing of it yet: reads check the
//     election's trust window on every call, writes are fenced by the term in
//     PostgreSQL, so a deposed leader can neither serve stale reads past its
//     window nor write.
//   - A write's outcome is unknown (connection lost during COMMIT): its keys
//     are re-read so the cache follows what PostgreSQL holds; if that fails
//     too, the cache is reloaded before it serves again.
//   - The stream closes while leading (the election stopped): the node steps
//     down, as the seed does; nothing leader-only keeps running.
//
// # Consistency of the cache
//
// Each term has its own cache, so a write of an old term can never reach the
// new term's cache. Within a term, every write holds the lock stripes of its
// keys from before its statement until after its cache update, so two writes
// of a key reach the cache in the order PostgreSQL committed them; a range
// delete and a reload hold every stripe. A write is acknowledged only after it
// committed and reached the cache, so a read after an acknowledged write sees
// it.
package metasrv
