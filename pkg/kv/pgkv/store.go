// Package pgkv is the PostgreSQL kv.Backend (postgres_store): one table
// "<schema>"."<table>" (k bytea PRIMARY KEY, v bytea), the layout GreptimeDB's
// postgres_store uses, accessed through a pgx/v5 pool.
//
// Plain writes are single autocommit statements; writes that must report the
// values they replaced run as a REPEATABLE READ transaction pipelined in one
// round trip; Txn runs SERIALIZABLE. Serialisation failures and deadlocks are
// retried with capped, jittered exponential backoff, reads are retried on
// connection failures, and a write whose COMMIT was in flight when the
// connection broke fails with kv.ErrOutcomeUnknown.
package pgkv

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/postgres"
)

// Name is the backend name, as GreptimeDB calls it.
const Name = "postgres_store"

// DefaultTable is the table used when Options.Table is empty.
const DefaultTable = "greptime_metakv"

const (
	defaultMaxAttempts = 10
	defaultBaseBackoff = 5 * time.Millisecond
	defaultMaxBackoff  = 500 * time.Millisecond
)

// Options say where the table lives and how hard to retry. Schema and Table
// must be valid identifiers (postgres.ValidIdentifier); they are quoted anyway.
type Options struct {
	// Schema holding the table; empty means the connection's search_path decides.
	Schema string
	// Table name; empty means DefaultTable.
	Table string
	// MaxAttempts bounds the tries of one operation (serialisation failures,
	// deadlocks, connection failures of reads); 0 means 10.
	MaxAttempts int
	// BaseBackoff is the first retry's backoff cap; it doubles per attempt up to
	// MaxBackoff, and each wait is drawn uniformly below the cap. 0 means 5ms.
	BaseBackoff time.Duration
	// MaxBackoff caps the backoff; 0 means 500ms.
	MaxBackoff time.Duration
}

func (o Options) withDefaults() Options {
	if o.Table == "" {
		o.Table = DefaultTable
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = defaultMaxAttempts
	}
	if o.BaseBackoff == 0 {
		o.BaseBackoff = defaultBaseBackoff
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = defaultMaxBackoff
	}
	return o
}

func (o Options) validate() error {
	if o.Schema != "" {
		if err := postgres.ValidIdentifier(o.Schema); err != nil {
			return fmt.Errorf("pgkv: schema: %w", err)
		}
	}
	if err := postgres.ValidIdentifier(o.Table); err != nil {
		return fmt.Errorf("pgkv: table: %w", err)
	}
	if o.MaxAttempts < 1 {
		return fmt.Errorf("pgkv: max attempts must be >= 1, got %d", o.MaxAttempts)
	}
	if o.BaseBackoff < 0 || o.MaxBackoff < o.BaseBackoff {
		return fmt.Errorf("pgkv: backoff must satisfy 0 <= base (%s) <= max (%s)", o.BaseBackoff, o.MaxBackoff)
	}
	return nil
}

// Fence guards writes that only the current leader may make. Check runs first
// in the write's transaction (typically reading the election row FOR SHARE and
// comparing the term); an error aborts the write.
type Fence interface {
	Check(ctx context.Context, tx pgx.Tx) error
}

// PipelineFence is a Fence that can also be checked inside a pipeline, so a
// fenced group commit costs one round trip instead of three (BEGIN, the
// check, then the writes with COMMIT). Its statement must take the lock
// Check takes and fail the transaction when Check would refuse: the writes
// and COMMIT behind it are sent before its answer is seen.
type PipelineFence interface {
	Fence
	// QueueCheck queues the check as the next statement of b, right after
	// BEGIN. An error refuses the write before anything is sent.
	QueueCheck(b *pgx.Batch) error
	// Refusal returns the fence's refusal (what Check would have returned)
	// when err, the error of the statement QueueCheck queued, is the check
	// failing, and nil when it is anything else, such as a broken connection,
	// which the caller judges like any statement's error.
	Refusal(ctx context.Context, err error) error
}

// Store is the PostgreSQL backend. It is safe for concurrent use.
type Store struct {
	pool   *pgxpool.Pool
	opts   Options
	q      *queries
	logger *slog.Logger
	fence  Fence
}

var _ kv.Backend = (*Store)(nil)

// New returns a Store on pool. The table must exist (see migrations.Up); New
// does not touch the database.
func New(pool *pgxpool.Pool, opts Options, logger *slog.Logger) (*Store, error) {
	if pool == nil {
		return nil, fmt.Errorf("pgkv: nil pool")
	}
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	table := pgx.Identifier{opts.Table}
	if opts.Schema != "" {
		table = pgx.Identifier{opts.Schema, opts.Table}
	}
	return &Store{
		pool:   pool,
		opts:   opts,
		q:      newQueries(table.Sanitize()),
		logger: logger.With("component", "pgkv"),
	}, nil
}

// Name implements kv.Backend.
func (s *Store) Name() string { return Name }

// WithFence returns a view of the same store in which every write runs in a
// transaction that calls f.Check first and is aborted if it fails; the error
// is returned wrapped, so errors.Is matches the fence's error. Reads are not
// fenced. A nil f returns s.
func (s *Store) WithFence(f Fence) kv.Backend {
	if f == nil {
		return s
	}
	fenced := *s
	fenced.fence = f
	return &fenced
}
