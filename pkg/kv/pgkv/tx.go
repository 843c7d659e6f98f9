package pgkv

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// querier is what a statement needs: the pool for autocommit statements, a
// transaction otherwise.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// inTx runs body in one transaction at iso, after the fence when there is one.
// A failed COMMIT comes back as a *commitError so that judge can tell "not
// applied" from "outcome unknown".
func (s *Store) inTx(ctx context.Context, iso pgx.TxIsoLevel, body func(ctx context.Context, q querier) error) error {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: iso})
	if err != nil {
		return err
	}
	if s.fence != nil {
		if err := s.fence.Check(ctx, tx); err != nil {
			rollback(ctx, tx)
			return fmt.Errorf("fence check: %w", err)
		}
	}
	if err := body(ctx, tx); err != nil {
		rollback(ctx, tx)
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return &commitError{err: err}
	}
	return nil
}

// rollback ends a failed transaction. Its error does not matter: a ROLLBACK
// that fails closes the connection, which rolls back as well.
func rollback(ctx context.Context, tx pgx.Tx) {
	_ = tx.Rollback(ctx)
}

// pipelineTx runs the statements fill queues as one REPEATABLE READ
// transaction, BEGIN and COMMIT included, in a single round trip.
func (s *Store) pipelineTx(ctx context.Context, fill func(b *pgx.Batch)) error {
	conn, err := s.acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	b := &pgx.Batch{}
	b.Queue(beginRepeatableRead)
	fill(b)
	b.Queue(commitStmt)
	err = conn.SendBatch(ctx, b).Close()
	if err != nil && !conn.Conn().IsClosed() && conn.Conn().PgConn().TxStatus() != 'I' {
		// A failed statement leaves the transaction open and aborted; end it so
		// the connection can go back to the pool (Release destroys it otherwise).
		_, _ = conn.Exec(ctx, rollbackStmt)
	}
	return err
}

// acquire takes a connection for a write, marking a failure as one that
// happened before anything was sent: a write that never got a connection
// certainly did not apply.
func (s *Store) acquire(ctx context.Context) (*pgxpool.Conn, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, &notSentError{err: err}
	}
	return conn, nil
}

// write runs a write that is one statement. Unfenced, the statement runs on
// its own (autocommit); fenced, it runs in a READ COMMITTED transaction after
// the fence.
func (s *Store) write(ctx context.Context, op string, stmt func(ctx context.Context, q querier) error) error {
	if s.fence == nil {
		return s.run(ctx, op, writeOp, func(ctx context.Context) error {
			conn, err := s.acquire(ctx)
			if err != nil {
				return err
			}
			defer conn.Release()
			return stmt(ctx, conn)
		})
	}
	return s.run(ctx, op, txOp, func(ctx context.Context) error {
		return s.inTx(ctx, pgx.ReadCommitted, stmt)
	})
}

// writeAtomic runs a write made of several statements (read the previous
// values, then write) in a REPEATABLE READ transaction: pipelined in one round
// trip when unfenced, after the fence otherwise. fill is called once per
// attempt, so callbacks must reset what they collect.
func (s *Store) writeAtomic(ctx context.Context, op string, fill func(b *pgx.Batch)) error {
	if s.fence == nil {
		return s.run(ctx, op, writeOp, func(ctx context.Context) error { return s.pipelineTx(ctx, fill) })
	}
	return s.run(ctx, op, txOp, func(ctx context.Context) error {
		return s.inTx(ctx, pgx.RepeatableRead, func(ctx context.Context, q querier) error {
			b := &pgx.Batch{}
			fill(b)
			return q.SendBatch(ctx, b).Close()
		})
	})
}
