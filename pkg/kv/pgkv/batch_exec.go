package pgkv

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgmetasrv/metasrv/pkg/kv"
)

// fenceError marks a refusal by the fence: it concerns every request of the
// batch alike, so none of them is retried alone.
type fenceError struct{ err error }

func (e *fenceError) Error() string { return "fence check: " + e.err.Error() }
func (e *fenceError) Unwrap() error { return e.err }

// flush executes one batch (all of one view) and answers each of its requests.
func (b *Batcher) flush(ctx context.Context, reqs []*batchRequest) {
	v := reqs[0].view
	ops := make([]batchOp, len(reqs))
	for i, r := range reqs {
		ops[i] = r.op
	}
	prevs, err := b.execute(ctx, v.fence, ops)
	if err == nil {
		for i, r := range reqs {
			r.finish(prevs[i], nil)
		}
		return
	}
	if len(reqs) > 1 && isolable(ctx, err) {
		// PostgreSQL refused the batch for something in the data, which
		// validation should have caught: find the culprit by running each
		// request on its own, in arrival order, so the others still apply.
		b.logger.WarnContext(ctx, "batch refused, running its requests one by one", "requests", len(reqs), "err", err)
		for _, r := range reqs {
			prev, err := runAlone(ctx, v.direct, r.op)
			r.finish(prev, err)
		}
		return
	}
	if b.isStopped() && !errors.Is(err, kv.ErrOutcomeUnknown) {
		err = fmt.Errorf("%w: %w", errBatcherStopped, err)
	}
	for _, r := range reqs {
		r.finish(nil, fmt.Errorf("%s in a batch of %d: %w", r.op.name(), len(reqs), err))
	}
}

func (b *Batcher) isStopped() bool {
	select {
	case <-b.stopped:
		return true
	default:
		return false
	}
}

// isolable reports a batch failure that may be caused by one request's data
// rather than by the fence, the server or the connection.
func isolable(ctx context.Context, err error) bool {
	var fe *fenceError
	return ctx.Err() == nil && !errors.As(err, &fe) &&
		!errors.Is(err, kv.ErrOutcomeUnknown) && !errors.Is(err, kv.ErrUnavailable) &&
		!errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

// runAlone runs op through the unbatched fenced store.
func runAlone(ctx context.Context, direct kv.Backend, op batchOp) ([]kv.KeyValue, error) {
	switch op.kind {
	case kindPut:
		p := op.kvs[0]
		resp, err := direct.Put(ctx, kv.PutRequest{Key: p.Key, Value: p.Value, PrevKv: op.prev})
		if err != nil || resp.PrevKv == nil {
			return nil, err
		}
		return []kv.KeyValue{*resp.PrevKv}, nil
	case kindBatchPut:
		resp, err := direct.BatchPut(ctx, kv.BatchPutRequest{Kvs: op.kvs, PrevKv: op.prev})
		return resp.PrevKvs, err
	default:
		resp, err := direct.BatchDelete(ctx, kv.BatchDeleteRequest{Keys: op.keys, PrevKv: op.prev})
		return resp.PrevKvs, err
	}
}

// execute applies ops as one transaction, retried as a whole on serialisation
// failures and deadlocks, and returns each op's previous pairs.
func (b *Batcher) execute(ctx context.Context, fence Fence, ops []batchOp) ([][]kv.KeyValue, error) {
	p := newBatchPlan(ops)
	var prevs [][]kv.KeyValue
	err := b.store.run(ctx, "batch", txOp, func(ctx context.Context) error {
		stored, err := b.attempt(ctx, fence, p)
		if err != nil {
			return err
		}
		prevs = p.answers(stored)
		return nil
	})
	return prevs, err
}

// attempt runs the batch's transaction once: BEGIN; the fence; then the read
// of the previous values, the net upsert, the net delete and COMMIT. With a
// PipelineFence (or none) all of it is one round trip; with another fence
// BEGIN and the check each take their own first. It returns the stored
// values of the plan's lockKeys.
//
// Previous values are read FOR UPDATE under REPEATABLE READ, as
// putReturningPrev does, so a concurrent change to one of those keys fails the
// attempt with 40001 instead of being overwritten unreported. A batch that
// reports no previous value runs READ COMMITTED.
func (b *Batcher) attempt(ctx context.Context, fence Fence, p *batchPlan) ([]kv.KeyValue, error) {
	conn, err := b.store.acquire(ctx)
	if err != nil {
		return nil, err
	}
	// A connection left inside a transaction is destroyed by Release, which
	// rolls the transaction back.
	defer conn.Release()
	pf, pipelined := fence.(PipelineFence)
	batch := &pgx.Batch{}
	var br pgx.BatchResults
	if fence == nil || pipelined {
		begin := beginReadCommitted
		if len(p.lockKeys) > 0 {
			begin = beginRepeatableRead
		}
		batch.Queue(begin)
		if pipelined {
			if err := pf.QueueCheck(batch); err != nil {
				return nil, &fenceError{err: err}
			}
		}
		b.queueWrites(batch, p)
		br = conn.SendBatch(ctx, batch)
		_, err = br.Exec()
		if err == nil && pipelined {
			if _, err = br.Exec(); err != nil {
				// Nothing more comes of this transaction: end it before the
				// fence looks at why, which may take a connection of its own.
				_ = br.Close()
				endAborted(ctx, conn)
				if refusal := pf.Refusal(ctx, err); refusal != nil {
					return nil, &fenceError{err: refusal}
				}
			}
		}
	} else {
		iso := pgx.ReadCommitted
		if len(p.lockKeys) > 0 {
			iso = pgx.RepeatableRead
		}
		var tx pgx.Tx
		if tx, err = conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: iso}); err != nil {
			return nil, err
		}
		if err := fence.Check(ctx, tx); err != nil {
			rollback(ctx, tx)
			return nil, &fenceError{err: err}
		}
		b.queueWrites(batch, p)
		// COMMIT travels with the statements, so the pgx.Tx is never committed
		// through its own method; the connection ends up idle on success.
		br = tx.SendBatch(ctx, batch)
	}
	var stored []kv.KeyValue
	if err == nil {
		stored, err = readBatch(br, p)
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		return stored, nil
	}
	var pgErr *pgconn.PgError
	if (errors.As(err, &pgErr) && severity(pgErr) == "ERROR") || errors.Is(err, pgx.ErrTxCommitRollback) || nothingSent(err) {
		// The server refused a statement (or nothing left): not applied.
		endAborted(ctx, conn)
		return nil, err
	}
	// The connection failed with COMMIT sent or about to be: it may have
	// committed.
	return nil, &commitError{err: err}
}

// queueWrites queues the plan's statements and COMMIT.
func (b *Batcher) queueWrites(batch *pgx.Batch, p *batchPlan) {
	q := b.store.q
	if len(p.lockKeys) > 0 {
		batch.Queue(q.lockPrev, p.lockKeys)
	}
	if len(p.putKeys) > 0 {
		batch.Queue(q.batchPut, p.putKeys, p.putValues)
	}
	if len(p.delKeys) > 0 {
		batch.Queue(q.batchDelete, p.delKeys)
	}
	batch.Queue(commitStmt)
}

// readBatch reads the results of attempt's pipeline.
func readBatch(br pgx.BatchResults, p *batchPlan) ([]kv.KeyValue, error) {
	var stored []kv.KeyValue
	if len(p.lockKeys) > 0 {
		rows, err := br.Query()
		if err != nil {
			return nil, err
		}
		if stored, err = collect(rows, false, len(p.lockKeys)); err != nil {
			return nil, err
		}
	}
	writes := 0
	if len(p.putKeys) > 0 {
		writes++
	}
	if len(p.delKeys) > 0 {
		writes++
	}
	for range writes {
		if _, err := br.Exec(); err != nil {
			return nil, err
		}
	}
	tag, err := br.Exec()
	if err != nil {
		return nil, err
	}
	if tag.String() != "COMMIT" {
		// COMMIT of an aborted transaction answers ROLLBACK.
		return nil, pgx.ErrTxCommitRollback
	}
	return stored, nil
}

// endAborted rolls back a transaction a failed statement left open, so the
// connection can return to the pool.
func endAborted(ctx context.Context, conn *pgxpool.Conn) {
	if !conn.Conn().IsClosed() && conn.Conn().PgConn().TxStatus() != 'I' {
		_, _ = conn.Exec(ctx, rollbackStmt)
	}
}
