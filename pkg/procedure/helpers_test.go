package procedure

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/kv/memkv"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const testType = "test_steps"

// testArgs is both the arguments and the dumped state of testProc.
type testArgs struct {
	Label     string    `json:"label"`
	Steps     int       `json:"steps"`
	Done      int       `json:"done"`
	Locks     []LockKey `json:"locks,omitempty"`
	Blob      string    `json:"blob,omitempty"`
	NoPersist bool      `json:"no_persist,omitempty"`
	// After step GrowAt completes, Blob becomes GrowTo bytes long.
	GrowAt int `json:"grow_at,omitempty"`
	GrowTo int `json:"grow_to,omitempty"`
}

// harness records what test procedures do and lets a test steer them.
// Hooks are set before the manager starts.
type harness struct {
	// step runs before step `step` of `label` takes effect; an error fails
	// the attempt, and the effect is not counted.
	step func(ctx context.Context, label string, step, attempt int) error
	// rollback runs before a rollback of `label` takes effect.
	rollback func(ctx context.Context, label string, attempt int) error

	mu        sync.Mutex
	effects   map[string]int // "label/step" -> times the step took effect
	rollbacks map[string]int // label -> completed rollbacks
	attempts  map[string]int // "label/step" -> attempts
	order     []string       // labels in the order their first step started
}

func newHarness() *harness {
	return &harness{effects: map[string]int{}, rollbacks: map[string]int{}, attempts: map[string]int{}}
}

func (h *harness) effect(label string, step int) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.effects[fmt.Sprintf("%s/%d", label, step)]
}

func (h *harness) attemptsOf(label string, step int) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.attempts[fmt.Sprintf("%s/%d", label, step)]
}

func (h *harness) rollbacksOf(label string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.rollbacks[label]
}

func (h *harness) startOrder() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.order...)
}

func (h *harness) loader(data []byte) (Procedure, error) {
	var a testArgs
	if err := json.Unmarshal(data, &a); err != nil {
		return nil, fmt.Errorf("decode test procedure: %w", err)
	}
	if a.Steps <= 0 {
		return nil, fmt.Errorf("steps must be > 0, got %d", a.Steps)
	}
	if a.Blob != "" && a.Blob != blob(len(a.Blob)) {
		return nil, errors.New("blob is corrupt")
	}
	return &testProc{h: h, a: a}, nil
}

type testProc struct {
	h *harness
	a testArgs
}

func (p *testProc) Type() string        { return testType }
func (p *testProc) LockKeys() []LockKey { return p.a.Locks }
func (p *testProc) Dump() ([]byte, error) {
	return json.Marshal(p.a)
}

func (p *testProc) Execute(ctx context.Context, pc *Context) (Status, error) {
	step := p.a.Done
	key := fmt.Sprintf("%s/%d", p.a.Label, step)
	p.h.mu.Lock()
	p.h.attempts[key]++
	if step == 0 && pc.Attempt == 0 && p.h.attempts[key] == 1 {
		p.h.order = append(p.h.order, p.a.Label)
	}
	p.h.mu.Unlock()
	if p.h.step != nil {
		if err := p.h.step(ctx, p.a.Label, step, pc.Attempt); err != nil {
			return Status{}, err
		}
	}
	p.h.mu.Lock()
	p.h.effects[key]++
	p.h.mu.Unlock()
	p.a.Done++
	if p.a.GrowTo > 0 && p.a.Done == p.a.GrowAt {
		p.a.Blob = blob(p.a.GrowTo)
	}
	if p.a.Done == p.a.Steps {
		return Done(fmt.Appendf(nil, `{"label":%q}`, p.a.Label)), nil
	}
	return Executing(!p.a.NoPersist), nil
}

func (p *testProc) Rollback(ctx context.Context, pc *Context) error {
	if p.h.rollback != nil {
		if err := p.h.rollback(ctx, p.a.Label, pc.Attempt); err != nil {
			return err
		}
	}
	p.h.mu.Lock()
	p.h.rollbacks[p.a.Label]++
	p.h.mu.Unlock()
	return nil
}

// blob is a deterministic string of n bytes that the loader can verify.
func blob(n int) string {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "%d,", i)
	}
	return b.String()[:n]
}

func args(t testing.TB, a testArgs) []byte {
	t.Helper()
	raw, err := json.Marshal(a)
	require.NoError(t, err)
	return raw
}

// testClock is an injectable clock.
type testClock struct{ now atomic.Int64 }

func newTestClock() *testClock {
	c := &testClock{}
	c.now.Store(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *testClock) Now() time.Time          { return time.Unix(0, c.now.Load()).UTC() }
func (c *testClock) Advance(d time.Duration) { c.now.Add(int64(d)) }
func discardLogger() *slog.Logger            { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
func fastOptions() Options                   { return Options{RetryDelay: time.Millisecond, MaxRetryTimes: 3} }
func testLogger(t testing.TB) *slog.Logger   { t.Helper(); return discardLogger() }
func newStore() kv.Backend                   { return memkv.New() }
func gateClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func requireClosed(t testing.TB, ch chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		t.Fatal("timed out waiting for a signal")
	}
}

// startManager starts a manager with h's test type on store and stops it at
// the end of the test.
func startManager(t *testing.T, opts Options, store kv.Backend, h *harness) *Manager {
	t.Helper()
	m := New(opts, testLogger(t))
	m.testSignals.Init(t)
	require.NoError(t, m.RegisterLoader(testType, h.loader))
	require.NoError(t, m.Start(t.Context(), store))
	t.Cleanup(m.Stop)
	return m
}

func submit(t *testing.T, m *Manager, a testArgs) ID {
	t.Helper()
	id, err := m.Submit(t.Context(), testType, args(t, a))
	require.NoError(t, err)
	return id
}

func wait(t *testing.T, m *Manager, id ID) Info {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	info, err := m.Wait(ctx, id)
	require.NoError(t, err)
	return info
}

// keysUnder lists the keys under prefix.
func keysUnder(t *testing.T, b kv.Backend, prefix string) []string {
	t.Helper()
	resp, err := b.Range(t.Context(), kv.RangeRequest{Key: []byte(prefix), RangeEnd: kv.PrefixEnd([]byte(prefix)), KeysOnly: true})
	require.NoError(t, err)
	out := make([]string, 0, len(resp.Kvs))
	for _, e := range resp.Kvs {
		out = append(out, string(e.Key))
	}
	return out
}

// faultyStore wraps a backend, letting a test fail writes.
type faultyStore struct {
	kv.Backend
	mu sync.Mutex
	// txnErr, when set, decides the error of a Txn before it reaches the
	// backend (nil: pass it through).
	txnErr func(req kv.TxnRequest) error
	// writeErr fails every other write while set.
	writeErr error
}

func (f *faultyStore) txnFault(req kv.TxnRequest) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.writeErr != nil {
		return f.writeErr
	}
	if f.txnErr != nil {
		return f.txnErr(req)
	}
	return nil
}

func (f *faultyStore) setWriteErr(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writeErr = err
}

func (f *faultyStore) writeFault() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.writeErr
}

func (f *faultyStore) Txn(ctx context.Context, req kv.TxnRequest) (kv.TxnResponse, error) {
	if err := f.txnFault(req); err != nil {
		return kv.TxnResponse{}, err
	}
	return f.Backend.Txn(ctx, req)
}

func (f *faultyStore) Put(ctx context.Context, req kv.PutRequest) (kv.PutResponse, error) {
	if err := f.writeFault(); err != nil {
		return kv.PutResponse{}, err
	}
	return f.Backend.Put(ctx, req)
}

func (f *faultyStore) DeleteRange(ctx context.Context, req kv.DeleteRangeRequest) (kv.DeleteRangeResponse, error) {
	if err := f.writeFault(); err != nil {
		return kv.DeleteRangeResponse{}, err
	}
	return f.Backend.DeleteRange(ctx, req)
}

func (f *faultyStore) BatchDelete(ctx context.Context, req kv.BatchDeleteRequest) (kv.BatchDeleteResponse, error) {
	if err := f.writeFault(); err != nil {
		return kv.BatchDeleteResponse{}, err
	}
	return f.Backend.BatchDelete(ctx, req)
}

func putReq(key, value string) kv.PutRequest {
	return kv.PutRequest{Key: []byte(key), Value: []byte(value)}
}

var errIntentional = errors.New("intentional failure")
