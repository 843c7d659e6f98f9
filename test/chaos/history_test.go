package chaos

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/pgmetasrv/metasrv/pkg/kv"
)

// outcome is how a call ended, as far as the caller can tell.
type outcome int

const (
	outcomeOK      outcome = iota // returned a result
	outcomeUnknown                // a write that may or may not have applied
	outcomeFailed                 // certainly not applied (the client says so), or a failed read
)

// classify applies pkg/client's contract: a write fails with an error
// matching kv.ErrOutcomeUnknown whenever it may have been applied, and with
// any other error only when it certainly was not. The check holds the client
// to that: a write classified failed is left out of the history, so if it did
// apply, its value shows up from nowhere and the history is not linearizable.
func classify(err error) outcome {
	switch {
	case err == nil:
		return outcomeOK
	case errors.Is(err, kv.ErrOutcomeUnknown):
		return outcomeUnknown
	default:
		return outcomeFailed
	}
}

// history records the operations of a run, with call and return times on
// one monotonic clock.
type history struct {
	start time.Time

	mu          sync.Mutex
	ops         []porcupine.Operation
	nextProcess int
	// failedWrites maps a value to the error of the write that certainly
	// did not apply it, to explain a value seen anyway.
	failedWrites map[string]string
	counts       map[opKind]map[outcome]int
	touched      map[string]bool // every key called on
	annotations  []porcupine.Annotation
}

func newHistory() *history {
	h := &history{start: time.Now(), failedWrites: map[string]string{}, counts: map[opKind]map[outcome]int{}, touched: map[string]bool{}}
	for _, k := range []opKind{opGet, opPut, opCAS, opTxn} {
		h.counts[k] = map[outcome]int{}
	}
	return h
}

// now is the time since the run began, in nanoseconds.
func (h *history) now() int64 { return time.Since(h.start).Nanoseconds() }

// newProcess returns a fresh porcupine client id. A worker takes a new one
// after an unknown outcome: the unknown operation stays open until the end
// of time, and one id must never have two operations open at once.
func (h *history) newProcess() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	id := h.nextProcess
	h.nextProcess++
	return id
}

// record adds one finished call. A read that failed is left out (it
// changed nothing); a write that certainly failed is left out and
// remembered; an unknown write is kept, open until the end of time.
func (h *history) record(process int, in kvInput, out kvOutput, call, ret int64, oc outcome, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.counts[in.Kind][oc]++
	h.touched[in.Key] = true
	switch oc {
	case outcomeFailed:
		if in.Kind != opGet {
			h.failedWrites[in.Value] = err.Error()
		}
		return
	case outcomeUnknown:
		out = kvOutput{Unknown: true, Err: err.Error()}
		ret = unknownReturn
	}
	h.ops = append(h.ops, porcupine.Operation{ClientId: process, Input: in, Output: out, Call: call, Return: ret})
}

// annotate marks a span of the run (a fault) in the visualisation.
func (h *history) annotate(start, end int64, tag, description string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.annotations = append(h.annotations, porcupine.Annotation{
		Tag: tag, Start: start, End: end, Description: description,
		BackgroundColor: "#f7c6c6",
	})
}

func (h *history) annotationsCopy() []porcupine.Annotation {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]porcupine.Annotation(nil), h.annotations...)
}

func (h *history) operations() []porcupine.Operation {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]porcupine.Operation(nil), h.ops...)
}

// ghostValues lists values observed in the history that a write classified
// as certainly failed had tried to write: the client's "not applied" was
// wrong.
func (h *history) ghostValues() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	seen := map[string]bool{}
	for _, op := range h.ops {
		in, o := op.Input.(kvInput), op.Output.(kvOutput)
		if o.Unknown {
			continue
		}
		seenValues := []string{o.Value}
		if (in.Kind == opCAS || in.Kind == opTxn) && o.OK {
			seenValues = append(seenValues, in.Expect)
		}
		for _, v := range seenValues {
			if errMsg, ok := h.failedWrites[v]; ok && v != absent && !seen[v] {
				seen[v] = true
				out = append(out, fmt.Sprintf("%s (observed by %s) was written by a call that failed with %q", v, describeOp(in, o), errMsg))
			}
		}
	}
	return out
}

// keys lists every key an operation was called on, whatever its outcome,
// sorted.
func (h *history) keys() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := slices.Collect(maps.Keys(h.touched))
	slices.Sort(out)
	return out
}

// summary counts the operations by kind and outcome.
func (h *history) summary() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	total := 0
	s := ""
	for _, k := range []opKind{opGet, opPut, opCAS, opTxn} {
		c := h.counts[k]
		total += c[outcomeOK] + c[outcomeUnknown] + c[outcomeFailed]
		s += fmt.Sprintf(" %s ok=%d unknown=%d failed=%d;", k, c[outcomeOK], c[outcomeUnknown], c[outcomeFailed])
	}
	return fmt.Sprintf("%d operations:%s", total, s)
}
