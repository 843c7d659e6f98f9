package procedure

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/kv/memkv"
)

// noopProc takes three persisted steps and does nothing else.
type noopProc struct {
	Done int `json:"done"`
}

func (p *noopProc) Type() string          { return "noop" }
func (p *noopProc) LockKeys() []LockKey   { return nil }
func (p *noopProc) Dump() ([]byte, error) { return json.Marshal(p) }
func (p *noopProc) Rollback(context.Context, *Context) error {
	return nil
}

func (p *noopProc) Execute(context.Context, *Context) (Status, error) {
	p.Done++
	if p.Done == 3 {
		return Done(nil), nil
	}
	return Executing(true), nil
}

func noopLoader(data []byte) (Procedure, error) {
	var p noopProc
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// BenchmarkNoopThreeStepProcedures measures no-op 3-step procedures per second
// (submit, three persisted steps, wait) with 64 concurrent submitters on
// memory_store. Run the same body against PostgreSQL for the real figure.
func BenchmarkNoopThreeStepProcedures(b *testing.B) {
	benchmarkProcedures(b, memkv.New())
}

func benchmarkProcedures(b *testing.B, store kv.Backend) {
	m := New(Options{MaxRunningProcedures: 1024}, discardLogger())
	if err := m.RegisterLoader("noop", noopLoader); err != nil {
		b.Fatal(err)
	}
	if err := m.Start(b.Context(), store); err != nil {
		b.Fatal(err)
	}
	defer m.Stop()
	const workers = 64
	work := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for range work {
				id, err := m.Submit(b.Context(), "noop", []byte(`{}`))
				if err == nil {
					var info Info
					info, err = m.Wait(b.Context(), id)
					if err == nil && info.State != StateDone {
						err = context.Canceled
					}
				}
				if err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		})
	}
	start := time.Now()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		work <- struct{}{}
	}
	close(work)
	wg.Wait()
	b.StopTimer()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "procedures/s")
}
