package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/pgmetasrv/metasrv/pkg/kv"
)

// opTimeout bounds one client call, the client's retries included.
const opTimeout = 10 * time.Second

// keySpace is the small set of keys the workers share, replaced by a fresh
// set every generation: each key's history stays short enough for
// porcupine (its memory grows with the square of a key's history) however
// long the run, while the clients still contend on a handful of keys. A new
// generation also starts from absent keys, so the "absent" cases recur.
type keySpace struct {
	perGeneration int
	generation    time.Duration
	tag           string // set apart the keys of one run from another's
}

// keyPrefix holds every key the workers use; nothing else writes under it.
const keyPrefix = "chaos/g"

// key is key number i of the generation running at time now (nanoseconds
// into the run).
func (k keySpace) key(now int64, i int) string {
	return fmt.Sprintf("%s%s%04d/k%d", keyPrefix, k.tag, now/int64(k.generation), i)
}

// worker runs operations one after another on a small key set and records
// each in the history.
type worker struct {
	id      int
	h       *history
	store   kv.Backend // a pkg/client Client: linearizable reads, leader writes
	keys    keySpace
	rng     *rand.Rand
	process int
	seq     int
	// lastSeen is the latest value this worker saw per key, the Expect of
	// its next cas or txn on that key: a guess that is often right, so that
	// both outcomes occur.
	lastSeen map[string]string
	// deadline draws the time limit of the next call; nil means opTimeout.
	deadline func(rng *rand.Rand) time.Duration
}

func newWorker(id int, h *history, s kv.Backend, keys keySpace, seed uint64) *worker {
	return &worker{
		id: id, h: h, store: s, keys: keys,
		rng:      rand.New(rand.NewPCG(seed, uint64(id))),
		process:  h.newProcess(),
		lastSeen: map[string]string{},
	}
}

// run works until stop is closed, letting the call in flight finish.
func (w *worker) run(t *testing.T, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		w.step(t)
	}
}

func (w *worker) nextValue() string {
	w.seq++
	return fmt.Sprintf("w%d-%d", w.id, w.seq)
}

// step runs one random operation: 30% get, 25% put, 25% cas, 20% txn.
func (w *worker) step(t *testing.T) {
	key := w.keys.key(w.h.now(), w.rng.IntN(w.keys.perGeneration))
	in := kvInput{Key: key}
	switch r := w.rng.IntN(100); {
	case r < 30:
		in.Kind = opGet
	case r < 55:
		in.Kind, in.Value = opPut, w.nextValue()
	case r < 80:
		in.Kind, in.Expect, in.Value = opCAS, w.lastSeen[key], w.nextValue()
	default:
		in.Kind, in.Expect, in.Value = opTxn, w.lastSeen[key], w.nextValue()
	}
	limit := opTimeout
	if w.deadline != nil {
		limit = w.deadline(w.rng)
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	call := w.h.now()
	out, err := execute(ctx, w.store, in)
	ret := w.h.now()
	cancel()
	oc := classify(err)
	if in.Kind == opGet && oc == outcomeUnknown {
		oc = outcomeFailed // a read changes nothing, whatever happened to it
	}
	switch {
	case errors.Is(err, kv.ErrInvalidArgument):
		t.Errorf("the server refused %s as invalid: %v", describeOp(in, out), err)
	case errors.Is(err, errBadAnswer):
		// It was executed, its answer is unusable: neither failed nor known.
		t.Errorf("%s: %v", describeOp(in, out), err)
		oc = outcomeUnknown
	}
	w.h.record(w.process, in, out, call, ret, oc, err)
	switch oc {
	case outcomeOK:
		w.lastSeen[key] = out.Value
		if in.Kind == opPut || ((in.Kind == opCAS || in.Kind == opTxn) && out.OK) {
			w.lastSeen[key] = in.Value
		}
	case outcomeUnknown:
		w.process = w.h.newProcess()
	}
}

// execute runs in through s and returns what the model needs of the answer.
func execute(ctx context.Context, s kv.Backend, in kvInput) (kvOutput, error) {
	key := []byte(in.Key)
	switch in.Kind {
	case opGet:
		resp, err := s.Range(ctx, kv.RangeRequest{Key: key})
		if err != nil {
			return kvOutput{}, err
		}
		return kvOutput{Value: firstValue(resp.Kvs)}, nil
	case opPut:
		resp, err := s.Put(ctx, kv.PutRequest{Key: key, Value: []byte(in.Value), PrevKv: true})
		if err != nil {
			return kvOutput{}, err
		}
		return kvOutput{Value: valueOf(resp.PrevKv)}, nil
	case opCAS:
		resp, err := s.CompareAndPut(ctx, kv.CompareAndPutRequest{Key: key, Expect: []byte(in.Expect), Value: []byte(in.Value)})
		if err != nil {
			return kvOutput{}, err
		}
		return kvOutput{OK: resp.Success, Value: valueOf(resp.PrevKv)}, nil
	case opTxn:
		cmp := kv.CompareValue(key, kv.CompareEqual, []byte(in.Expect))
		if in.Expect == absent {
			cmp = kv.CompareAbsent(key)
		}
		resp, err := s.Txn(ctx, kv.TxnRequest{
			Compare: []kv.Compare{cmp},
			Success: []kv.TxnOp{kv.OpPut(key, []byte(in.Value))},
			Failure: []kv.TxnOp{kv.OpGet(key)},
		})
		if err != nil {
			return kvOutput{}, err
		}
		out := kvOutput{OK: resp.Succeeded}
		if !resp.Succeeded {
			if len(resp.Responses) != 1 {
				return kvOutput{}, fmt.Errorf("txn failure branch answered %d responses, want 1: %w", len(resp.Responses), errBadAnswer)
			}
			out.Value = firstValue(resp.Responses[0].Kvs)
		}
		return out, nil
	default:
		return kvOutput{}, fmt.Errorf("unknown operation kind %d: %w", in.Kind, errBadAnswer)
	}
}

// errBadAnswer marks an answer that breaks the API's shape; the run fails.
var errBadAnswer = errors.New("malformed answer")

func firstValue(kvs []kv.KeyValue) string {
	if len(kvs) == 0 {
		return absent
	}
	return string(kvs[0].Value)
}

func valueOf(p *kv.KeyValue) string {
	if p == nil {
		return absent
	}
	return string(p.Value)
}

// workload is a set of workers running until stopped.
type workload struct {
	stop chan struct{}
	wg   sync.WaitGroup
}

func startWorkload(t *testing.T, workers []*worker) *workload {
	w := &workload{stop: make(chan struct{})}
	for _, wk := range workers {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			wk.run(t, w.stop)
		}()
	}
	return w
}

// halt stops the workers and waits for their last calls. Safe twice.
func (w *workload) halt() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	w.wg.Wait()
}
