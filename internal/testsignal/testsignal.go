// Package testsignal lets a test wait for a component's internal events
// instead of polling for their effects, as River's internal/testsignal does
// (riverqueue/river: elector.testSignals.GainedLeadership.WaitOrTimeout()).
//
// A component embeds a struct of Signal fields and calls Signal at the
// events; a test calls Init on the fields before starting the component and
// then waits with WaitOrTimeout. An uninitialised Signal is a no-op costing a
// nil check, so production code pays nothing.
package testsignal

import (
	"strconv"
	"sync/atomic"
	"time"
)

// Timeout bounds WaitOrTimeout and WaitUntil: generous, a slow loaded machine
// must not fail a correct component.
const Timeout = 60 * time.Second

// bufferSize is how many unconsumed values a Signal keeps. Values beyond it
// are dropped and counted, never blocking the component: a test that does
// not consume a signal must not stall the code under test.
const bufferSize = 1000

// TB is the part of testing.TB a Signal uses; an interface so that
// production code need not import package testing.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
}

// Signal carries the values of one kind of event from the component to the
// test, in order. The zero value is disabled.
type Signal[T any] struct {
	ch      chan T
	tb      TB
	dropped atomic.Int64
}

// Init enables the signal. Call it before the component that signals starts
// (the start is what orders it before the component's Signal calls).
func (s *Signal[T]) Init(tb TB) {
	s.tb = tb
	s.ch = make(chan T, bufferSize)
}

// Signal records v for the test; a no-op unless Init was called. It never
// blocks.
func (s *Signal[T]) Signal(v T) {
	if s == nil || s.ch == nil {
		return
	}
	select {
	case s.ch <- v:
	default:
		s.dropped.Add(1)
	}
}

// WaitOrTimeout returns the next value signalled, failing the test when none
// comes within Timeout.
func (s *Signal[T]) WaitOrTimeout() T {
	s.mustInit()
	s.tb.Helper()
	timer := time.NewTimer(Timeout)
	defer timer.Stop()
	select {
	case v := <-s.ch:
		return v
	case <-timer.C:
		s.tb.Fatalf("testsignal: no value within %s%s", Timeout, s.droppedNote())
		var zero T
		return zero
	}
}

// WaitUntil consumes values until one satisfies ok and returns it, failing the
// test when none does within Timeout.
func (s *Signal[T]) WaitUntil(ok func(T) bool) T {
	s.mustInit()
	s.tb.Helper()
	timer := time.NewTimer(Timeout)
	defer timer.Stop()
	for {
		select {
		case v := <-s.ch:
			if ok(v) {
				return v
			}
		case <-timer.C:
			s.tb.Fatalf("testsignal: no matching value within %s%s", Timeout, s.droppedNote())
			var zero T
			return zero
		}
	}
}

// RequireEmpty fails the test when a value is waiting.
func (s *Signal[T]) RequireEmpty() {
	s.mustInit()
	s.tb.Helper()
	select {
	case v := <-s.ch:
		s.tb.Fatalf("testsignal: unexpected value %v", v)
	default:
	}
}

func (s *Signal[T]) mustInit() {
	if s.ch == nil {
		panic("testsignal: wait on a signal that was not initialised (call Init before starting the component)")
	}
}

func (s *Signal[T]) droppedNote() string {
	if n := s.dropped.Load(); n > 0 {
		return " (" + strconv.FormatInt(n, 10) + " values were dropped: the buffer was full)"
	}
	return ""
}
