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
// # Who leads which term, and which check guards what
//
// The election owns the one record of leadership: election.Stream holds the
// term this node leads and its trust window, written by the elector alone.
// The core keeps no copy of it. Its running term (current) is the term's
// resources, a cache and a store, and the node's State is derived from it
// (no term: Follower; else the term's phase). A Put meets these checks, each
// guarding something the others cannot:
//
//  1. LeaderBackend: a term is open to callers (phase LeaderReady). It is
//     what turns a call on a follower, or on a leader still loading, into a
//     NotLeaderError naming the leader, before any work.
//  2. termStore.check, on every call of the term's store: the term is still
//     the running one, the election trusts this node's leadership of it right
//     now (Elector.TrustedTerm), and the cache is complete. A store handle
//     can outlive the moment it was handed out, and the trust window can
//     lapse while no StepDown has been processed yet (a frozen leader
//     resuming); this check is what keeps such a handle from serving stale
//     reads or starting writes.
//  3. The fence in the write's transaction (pgelection's Fence.Check): the
//     trust window again, at the last moment before the statement, then the
//     election row read FOR SHARE, which is what makes a write of a deposed
//     term fail in PostgreSQL itself, whatever this node believes.
//
// Response headers and health read the same record (Elector.TrustedTerm), so
// they never name as leader a term the checks above would refuse.
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
//   - A caller gives up on its write (deadline, cancelled RPC): the write does
//     not. It runs on a context of its own that only the term's end (or the
//     write time limit) cancels, and its own outcome goes into the cache. The
//     caller is told "not sent" if it left while the write still waited for
//     its keys' locks, and kv.ErrOutcomeUnknown if it left later.
//   - A write's outcome is truly unknown (the connection broke during COMMIT,
//     or the write time limit struck): PostgreSQL may still be committing it.
//     Its keys stay locked and are marked unsure, so reads of them go to
//     PostgreSQL (which holds one outcome or the other and never goes back);
//     the election's Settle then waits until no fenced transaction open
//     before it can commit, and only then are the keys re-read into the cache
//     and unmarked. Re-reading earlier could cache the value the write was
//     about to replace. Failures are retried until the term ends. A range
//     delete of unknown outcome cannot name its keys: the cache is refused
//     and reloaded, after Settle.
//   - The stream closes while leading (the election stopped): the node steps
//     down, as the seed does; nothing leader-only keeps running.
//
// # Consistency of the cache
//
// Invariant: whenever a read is served from the cache, the cache holds what
// PostgreSQL committed for that key.
//
// Each term has its own cache, so a write of an old term can never reach the
// new term's cache. Within a term, every write holds the lock stripes of its
// keys from before its statement until its outcome is in the cache, so two
// writes of a key reach the cache in the order PostgreSQL committed them; a
// range delete and a reload hold every stripe. A write is acknowledged only
// after it committed and reached the cache, so a read after an acknowledged
// write sees it. While a write is in flight the cache still has the old value,
// which is a correct answer: the write has not been acknowledged. Its outcome,
// once known, is applied before the stripes are released; an outcome that is
// not known makes its keys unsure (see Failures) until it is. Why this matters:
// the cache used to re-read a key the moment a caller left, while the write
// was still queued or committing, and kept the old value it read after the
// write committed.
//
// Because under a key's stripe the cache equals PostgreSQL for that key,
// CompareAndPut and Txn decide their compares on the cache: a failed compare
// costs no round trip, and the writes that follow join the group commit.
//
// A term's writes are tracked (writeGate): stepping down cancels them and
// waits for them before the listeners stop, so none outlives its term.
package metasrv
