package pgkv

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/pgmetasrv/metasrv/pkg/kv"
)

const (
	defaultBatchMaxRequests = 256
	defaultBatchMaxBytes    = 1 << 20
)

// BatchOptions bound one group commit.
type BatchOptions struct {
	// MaxRequests caps the requests of one batch; 0 means 256.
	MaxRequests int
	// MaxBytes caps the keys and values of one batch; 0 means 1 MiB. A single
	// request larger than that still runs, in a batch of its own.
	MaxBytes int
}

func (o BatchOptions) withDefaults() BatchOptions {
	if o.MaxRequests == 0 {
		o.MaxRequests = defaultBatchMaxRequests
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = defaultBatchMaxBytes
	}
	return o
}

// Batcher is group commit for a Store's writes: concurrent Put, BatchPut and
// BatchDelete calls made through its views are applied together, in arrival
// order, in one transaction with one fence check, by a single flusher. While
// the flusher is idle a request is sent at once, so there is no added latency
// at low load; while a batch is in flight, arriving requests queue up and form
// the next one. Every request is acknowledged only after its batch committed.
//
// One Batcher serves any number of views (one per fence, e.g. per term);
// requests of different views never share a transaction.
type Batcher struct {
	store  *Store
	opts   BatchOptions
	logger *slog.Logger

	mu      sync.Mutex
	state   batcherState
	queue   []*batchRequest
	cancel  context.CancelFunc // ends the flusher's context, aborting the batch in flight
	wake    chan struct{}      // a request was queued; capacity 1
	stopped chan struct{}      // closed by Stop
	done    chan struct{}      // closed when the flusher has returned
}

type batcherState int

const (
	batcherNew batcherState = iota
	batcherRunning
	batcherStopped
)

// NewBatcher returns a stopped Batcher of s; Start runs it.
func NewBatcher(s *Store, opts BatchOptions, logger *slog.Logger) (*Batcher, error) {
	if s == nil {
		return nil, errors.New("pgkv: batcher: nil store")
	}
	opts = opts.withDefaults()
	if opts.MaxRequests < 1 || opts.MaxBytes < 1 {
		return nil, fmt.Errorf("pgkv: batcher: max requests (%d) and max bytes (%d) must be >= 1", opts.MaxRequests, opts.MaxBytes)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Batcher{
		store:   s,
		opts:    opts,
		logger:  logger.With("component", "pgkv_batcher"),
		wake:    make(chan struct{}, 1),
		stopped: make(chan struct{}),
		done:    make(chan struct{}),
	}, nil
}

// Start runs the flusher and returns. ctx bounds only the start: the flusher
// runs until Stop (a batch in flight keeps ctx's values, not its deadline). A
// second Start is a no-op; a stopped Batcher cannot start again.
func (b *Batcher) Start(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case batcherRunning:
		b.logger.WarnContext(ctx, "batcher already started")
		return nil
	case batcherStopped:
		return errors.New("pgkv: batcher: stopped, cannot start again")
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("pgkv: batcher: start: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	b.cancel = cancel
	b.state = batcherRunning
	go b.run(runCtx)
	return nil
}

// Stop refuses new requests, fails the queued ones with kv.ErrUnavailable,
// aborts the batch in flight (its requests fail, or get kv.ErrOutcomeUnknown
// if its COMMIT was under way) and returns once the flusher has ended. Safe to
// call more than once, and before Start.
func (b *Batcher) Stop() {
	b.mu.Lock()
	prev := b.state
	b.state = batcherStopped
	queued := b.queue
	b.queue = nil
	if prev != batcherStopped {
		close(b.stopped)
	}
	b.mu.Unlock()
	for _, r := range queued {
		// A caller leaving at this moment must find a flight to leave.
		r.flight = &flight{cancel: func() {}}
		if r.state.CompareAndSwap(reqQueued, reqClaimed) {
			r.finish(nil, errBatcherStopped)
		}
	}
	switch prev {
	case batcherRunning:
		b.cancel()
		<-b.done
	case batcherNew:
		close(b.done)
	}
}

var errBatcherStopped = fmt.Errorf("%w: pgkv batcher stopped", kv.ErrUnavailable)

// WithFence returns a view of the store whose Put, BatchPut and BatchDelete go
// through the batcher, each batch checking f once in its transaction (nil f:
// no check). Every other call goes to s.WithFence(f) directly: CompareAndPut,
// Txn and DeleteRange keep their own transactions, reads are not fenced.
func (b *Batcher) WithFence(f Fence) kv.Backend {
	return &batchedView{b: b, fence: f, direct: b.store.WithFence(f)}
}

// enqueue hands r to the flusher, or refuses it when the batcher is not
// running.
func (b *Batcher) enqueue(r *batchRequest) error {
	b.mu.Lock()
	switch b.state {
	case batcherNew:
		b.mu.Unlock()
		return fmt.Errorf("%w: pgkv batcher not started", kv.ErrUnavailable)
	case batcherStopped:
		b.mu.Unlock()
		return errBatcherStopped
	}
	b.queue = append(b.queue, r)
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
	return nil
}

// submit runs op through the batcher and waits for its outcome. When ctx ends
// first, a request still queued is dropped unsent (ctx's error: certainly not
// applied); one already in a batch still waits for the batch to end and
// reports its outcome, which may be kv.ErrOutcomeUnknown if the batch was
// aborted during COMMIT because all its callers left.
func (b *Batcher) submit(ctx context.Context, v *batchedView, op batchOp) ([]kv.KeyValue, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("pgkv: %s: %w", op.name(), err)
	}
	r := &batchRequest{view: v, op: op, size: op.size(), done: make(chan struct{})}
	if err := b.enqueue(r); err != nil {
		return nil, fmt.Errorf("pgkv: %s: %w", op.name(), err)
	}
	select {
	case <-r.done:
		return r.prev, r.err
	case <-ctx.Done():
	}
	if r.state.CompareAndSwap(reqQueued, reqAbandoned) {
		// Never sent: the flusher drops it.
		return nil, fmt.Errorf("pgkv: %s: %w", op.name(), ctx.Err())
	}
	// Already in a batch: leaving cannot unsend it. Answering now would hand
	// the caller "unknown" while the batch may still be on its way to the
	// fence, so a re-read made after that answer could precede the commit.
	// Instead the request stops holding the batch up (the batch is aborted
	// once nobody waits for it) and answers with the batch's own outcome,
	// known once its transaction has ended as far as this process can tell.
	r.flight.leave()
	<-r.done
	return r.prev, r.err
}

// Request states: queued -> claimed (the flusher took it into a batch) or
// queued -> abandoned (its caller left first).
const (
	reqQueued int32 = iota
	reqClaimed
	reqAbandoned
)

type batchRequest struct {
	view  *batchedView
	op    batchOp
	size  int
	state atomic.Int32
	// flight is set by the flusher before it claims the request, so a caller
	// that fails to abandon it can read it.
	flight *flight
	done   chan struct{}
	prev   []kv.KeyValue
	err    error
}

func (r *batchRequest) finish(prev []kv.KeyValue, err error) {
	r.prev, r.err = prev, err
	close(r.done)
}

// flight is one batch being executed. Once every caller waiting for it has
// left, nobody can use its outcome, so it is aborted.
type flight struct {
	waiters atomic.Int64
	cancel  context.CancelFunc
}

func (f *flight) leave() {
	if f.waiters.Add(-1) == 0 {
		f.cancel()
	}
}

// run is the flusher: it sends one batch at a time until Stop.
func (b *Batcher) run(ctx context.Context) {
	defer close(b.done)
	for {
		select {
		case <-b.stopped:
			return
		case <-b.wake:
		}
		for {
			reqs, fl, fctx := b.take(ctx)
			if reqs == nil {
				break
			}
			b.flush(fctx, reqs)
			fl.cancel()
		}
	}
}

// take removes the next batch from the queue and claims it: the longest run
// of queued requests of the head's view within the caps. It returns nil when
// nothing is left to send.
func (b *Batcher) take(ctx context.Context) ([]*batchRequest, *flight, context.Context) {
	for {
		b.mu.Lock()
		if b.state != batcherRunning {
			b.mu.Unlock()
			return nil, nil, nil
		}
		var batch []*batchRequest
		var view *batchedView
		bytes, n := 0, 0
		for ; n < len(b.queue); n++ {
			r := b.queue[n]
			if r.state.Load() == reqAbandoned {
				continue
			}
			if view != nil && (r.view != view || len(batch) == b.opts.MaxRequests || bytes+r.size > b.opts.MaxBytes) {
				break
			}
			view = r.view
			batch = append(batch, r)
			bytes += r.size
		}
		rest := b.queue[n:]
		clear(b.queue[:n])
		b.queue = rest
		b.mu.Unlock()
		if len(batch) == 0 {
			return nil, nil, nil
		}
		fctx, cancel := context.WithCancel(ctx)
		fl := &flight{cancel: cancel}
		fl.waiters.Store(int64(len(batch)))
		claimed := batch[:0]
		for _, r := range batch {
			r.flight = fl
			if r.state.CompareAndSwap(reqQueued, reqClaimed) {
				claimed = append(claimed, r)
			} else {
				fl.waiters.Add(-1)
			}
		}
		if len(claimed) > 0 {
			return claimed, fl, fctx
		}
		cancel()
	}
}

// batchedView is a fenced view whose plain writes are batched.
type batchedView struct {
	b      *Batcher
	fence  Fence
	direct kv.Backend
}

var _ kv.Backend = (*batchedView)(nil)

func (v *batchedView) Name() string { return Name }

func (v *batchedView) Put(ctx context.Context, req kv.PutRequest) (kv.PutResponse, error) {
	if req.Key == nil {
		// NULL is not a key: the direct path reports PostgreSQL's refusal.
		return v.direct.Put(ctx, req)
	}
	prev, err := v.b.submit(ctx, v, batchOp{kind: kindPut, kvs: []kv.KeyValue{{Key: req.Key, Value: req.Value}}, prev: req.PrevKv})
	if err != nil || len(prev) == 0 {
		return kv.PutResponse{}, err
	}
	return kv.PutResponse{PrevKv: &prev[0]}, nil
}

func (v *batchedView) BatchPut(ctx context.Context, req kv.BatchPutRequest) (kv.BatchPutResponse, error) {
	if len(req.Kvs) == 0 {
		return kv.BatchPutResponse{}, nil
	}
	for _, p := range req.Kvs {
		if p.Key == nil {
			return v.direct.BatchPut(ctx, req)
		}
	}
	prev, err := v.b.submit(ctx, v, batchOp{kind: kindBatchPut, kvs: req.Kvs, prev: req.PrevKv})
	if err != nil {
		return kv.BatchPutResponse{}, err
	}
	return kv.BatchPutResponse{PrevKvs: prev}, nil
}

func (v *batchedView) BatchDelete(ctx context.Context, req kv.BatchDeleteRequest) (kv.BatchDeleteResponse, error) {
	if len(req.Keys) == 0 {
		return kv.BatchDeleteResponse{}, nil
	}
	for _, k := range req.Keys {
		if k == nil {
			return v.direct.BatchDelete(ctx, req)
		}
	}
	prev, err := v.b.submit(ctx, v, batchOp{kind: kindBatchDelete, keys: req.Keys, prev: req.PrevKv})
	if err != nil {
		return kv.BatchDeleteResponse{}, err
	}
	return kv.BatchDeleteResponse{PrevKvs: prev}, nil
}

func (v *batchedView) Range(ctx context.Context, req kv.RangeRequest) (kv.RangeResponse, error) {
	return v.direct.Range(ctx, req)
}

func (v *batchedView) BatchGet(ctx context.Context, req kv.BatchGetRequest) (kv.BatchGetResponse, error) {
	return v.direct.BatchGet(ctx, req)
}

func (v *batchedView) DeleteRange(ctx context.Context, req kv.DeleteRangeRequest) (kv.DeleteRangeResponse, error) {
	return v.direct.DeleteRange(ctx, req)
}

func (v *batchedView) CompareAndPut(ctx context.Context, req kv.CompareAndPutRequest) (kv.CompareAndPutResponse, error) {
	return v.direct.CompareAndPut(ctx, req)
}

func (v *batchedView) Txn(ctx context.Context, req kv.TxnRequest) (kv.TxnResponse, error) {
	return v.direct.Txn(ctx, req)
}
