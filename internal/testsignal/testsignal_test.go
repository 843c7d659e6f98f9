package testsignal

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeTB records a failure instead of ending the test.
type fakeTB struct{ failed string }

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed = fmt.Sprintf(format, args...)
}

func TestDisabledSignalIsANoOp(t *testing.T) {
	t.Parallel()
	var s Signal[int]
	s.Signal(1)
	var p *Signal[int]
	p.Signal(1)
	require.Panics(t, func() { s.WaitOrTimeout() })
}

func TestSignalsArriveInOrder(t *testing.T) {
	t.Parallel()
	var s Signal[int]
	s.Init(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 5 {
			s.Signal(i)
		}
	}()
	require.Equal(t, 0, s.WaitOrTimeout())
	require.Equal(t, 3, s.WaitUntil(func(v int) bool { return v >= 3 }))
	require.Equal(t, 4, s.WaitOrTimeout())
	<-done
	s.RequireEmpty()
}

func TestFullBufferDropsAndSays(t *testing.T) {
	t.Parallel()
	var s Signal[int]
	s.Init(t)
	for i := range bufferSize + 2 {
		s.Signal(i)
	}
	require.EqualValues(t, 2, s.dropped.Load())
	require.Contains(t, s.droppedNote(), "2 values were dropped")
	f := &fakeTB{}
	s.tb = f
	s.RequireEmpty()
	require.Contains(t, f.failed, "unexpected value 0")
}
