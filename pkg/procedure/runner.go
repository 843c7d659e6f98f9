package procedure

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/pgmetasrv/metasrv/pkg/backoff"
	"github.com/pgmetasrv/metasrv/pkg/kv"
)

// errAbandon ends a procedure's drive without another write: the run is
// stopping, or the store refused this node (fenced) or another writer owns the
// procedure. Its persisted state is left for the next leader.
var errAbandon = errors.New("procedure abandoned by this manager")

// maxErrorLen bounds the error text kept in a record, so a huge error cannot
// make the record itself too large to store.
const maxErrorLen = 4096

// minErrorLen is what is kept of an error when even a shortened one does not
// fit beside the procedure's lock keys.
const minErrorLen = 64

func truncate(msg string, n int) string {
	if len(msg) <= n {
		return msg
	}
	return msg[:n] + "...(truncated)"
}

// truncateError keeps an error to a quarter of a stored value at most.
func (r *run) truncateError(msg string) string {
	return truncate(msg, min(maxErrorLen, r.m.opts.MaxMetadataValueSize/4))
}

// drive runs one procedure from its persisted state to a final state, or
// until it is abandoned.
func (r *run) drive(ctx context.Context, e *entry) {
	defer r.wg.Done()
	defer e.cancel()
	log := r.m.log.With("procedure_id", e.id, "type", e.st.rec.Type)
	var final *record
	err := r.locks.wait(ctx, e.lock)
	if err == nil {
		final, err = r.execute(ctx, e, log)
	}
	r.locks.release(e.lock)
	fenced := isFenced(err)
	stalled := err != nil && !fenced && ctx.Err() == nil
	if fenced {
		log.Warn("procedure stopped without rollback: another leader owns it now", "err", err)
	}
	r.mu.Lock()
	delete(r.procs, e.id)
	r.mu.Unlock()
	r.m.totals.record(final, fenced, stalled)
	if final != nil {
		info := final.info()
		e.final = &info
		log.Info("procedure finished", "state", final.State, "steps", final.Step, "err", final.Error)
	}
	end := driveEnd{ID: e.id, Fenced: fenced, Stalled: stalled}
	if final != nil {
		end.State = final.State
	}
	r.m.testSignals.DriveEnded.Signal(end)
	close(e.done)
}

func (r *run) execute(ctx context.Context, e *entry, log *slog.Logger) (*record, error) {
	pc := &Context{ID: e.id, Term: r.term, Step: e.st.rec.Step, Store: r.kv, Logger: log}
	if e.st.rec.State == StateRollingBack {
		return r.backward(ctx, e, pc, log, e.st.rec.Error, e.st.rec.ErrorCode)
	}
	return r.forward(ctx, e, pc, log)
}

func (r *run) next(e *entry, s State) *record {
	rec := *e.st.rec
	rec.State = s
	rec.UpdatedAt = r.m.now()
	return &rec
}

// forward executes steps until the procedure is done or must roll back.
func (r *run) forward(ctx context.Context, e *entry, pc *Context, log *slog.Logger) (*record, error) {
	steps := e.st.rec.Step
	attempt := 0
	for {
		if err := r.pause.wait(ctx, e.id); err != nil {
			return nil, errAbandon
		}
		pc.Step, pc.Attempt = steps, attempt
		status, err := safeExecute(ctx, e.p, pc)
		if ctx.Err() != nil {
			// Stopping: the step's outcome is not persisted, so the next
			// leader runs it again.
			return nil, errAbandon
		}
		if err != nil {
			if isFenced(err) {
				return nil, err
			}
			if IsRetryable(err) && attempt < r.m.opts.MaxRetryTimes {
				attempt++
				log.Warn("procedure step failed, retrying", "step", steps, "attempt", attempt, "err", err)
				rec := r.next(e, StateRetrying)
				rec.Error = r.truncateError(fmt.Sprintf("step %d attempt %d: %v", steps, attempt, err))
				rec.ErrorCode = ErrorCode(err)
				if err := r.persist(ctx, e, rec, keepData, nil); err != nil {
					return r.persistFailed(ctx, e, pc, log, err)
				}
				if err := backoff.Sleep(ctx, r.backoff(attempt)); err != nil {
					return nil, errAbandon
				}
				continue
			}
			if IsRetryable(err) {
				err = fmt.Errorf("step %d failed %d times: %w", steps, attempt+1, err)
			} else {
				err = fmt.Errorf("step %d: %w", steps, err)
			}
			return r.backward(ctx, e, pc, log, err.Error(), ErrorCode(err))
		}
		r.m.testSignals.StepExecuted.Signal(stepRun{ID: e.id, Step: steps, Attempt: attempt})
		steps++
		attempt = 0
		if status.done {
			rec := r.next(e, StateDone)
			rec.Step, rec.Error, rec.ErrorCode, rec.Output = steps, "", 0, status.output
			if err := r.persist(ctx, e, rec, dropData, nil); err != nil {
				return r.persistFailed(ctx, e, pc, log, err)
			}
			return e.st.rec, nil
		}
		switch {
		case status.persist:
			rec := r.next(e, StateRunning)
			rec.Step, rec.Error, rec.ErrorCode = steps, "", 0
			data, err := dumpJSON(e)
			if err == nil {
				err = r.persist(ctx, e, rec, replaceData, data)
			}
			if err != nil {
				return r.persistFailed(ctx, e, pc, log, err)
			}
		case e.st.rec.State == StateRetrying:
			// The step succeeded but asked not to be persisted: record that
			// the procedure runs again, keeping the last persisted step.
			rec := r.next(e, StateRunning)
			rec.Error, rec.ErrorCode = "", 0
			if err := r.persist(ctx, e, rec, keepData, nil); err != nil {
				return r.persistFailed(ctx, e, pc, log, err)
			}
		}
	}
}

func dumpJSON(e *entry) ([]byte, error) {
	raw, err := e.p.Dump()
	if err != nil {
		return nil, fmt.Errorf("%w: dump state of procedure %s: %w", ErrInvalidArgument, e.id, err)
	}
	return compactJSON(e.id, raw)
}

// persistFailed handles a forward write that failed for good: abandon when
// stopping or fenced; roll back when the procedure's own state or output
// cannot be stored (too large, not JSON).
func (r *run) persistFailed(ctx context.Context, e *entry, pc *Context, log *slog.Logger, err error) (*record, error) {
	if errors.Is(err, errAbandon) || isFenced(err) {
		return nil, err
	}
	log.Error("procedure state cannot be stored, rolling back", "err", err)
	return r.backward(ctx, e, pc, log, fmt.Sprintf("step %d: %v", pc.Step, err), 0)
}

// backward rolls the procedure back after cause (whose ErrorCode is code),
// retrying a failing rollback, and marks it failed when the rollback cannot
// succeed.
func (r *run) backward(ctx context.Context, e *entry, pc *Context, log *slog.Logger, cause string, code uint32) (*record, error) {
	cause = r.truncateError(cause)
	if e.st.rec.State != StateRollingBack {
		log.Warn("procedure failed, rolling back", "err", cause)
		rec := r.next(e, StateRollingBack)
		rec.Error, rec.ErrorCode = cause, code
		if err := r.persist(ctx, e, rec, keepData, nil); err != nil {
			return nil, r.abandonBackward(log, err)
		}
	}
	attempt := 0
	for {
		if err := r.pause.wait(ctx, e.id); err != nil {
			return nil, errAbandon
		}
		pc.Attempt = attempt
		err := safeRollback(ctx, e.p, pc)
		if ctx.Err() != nil {
			return nil, errAbandon
		}
		if err == nil {
			rec := r.next(e, StateRolledBack)
			if err := r.persist(ctx, e, rec, dropData, nil); err != nil {
				return nil, r.abandonBackward(log, err)
			}
			return e.st.rec, nil
		}
		if isFenced(err) {
			return nil, err
		}
		if IsRetryable(err) && attempt < r.m.opts.MaxRetryTimes {
			attempt++
			log.Warn("procedure rollback failed, retrying", "attempt", attempt, "err", err)
			if err := backoff.Sleep(ctx, r.backoff(attempt)); err != nil {
				return nil, errAbandon
			}
			continue
		}
		log.Error("procedure rollback failed: procedure is poisoned and needs an operator", "err", err)
		rec := r.next(e, StateFailed)
		rec.Error = r.truncateError(fmt.Sprintf("%s; rollback failed after %d attempts: %v", cause, attempt+1, err))
		if err := r.persist(ctx, e, rec, keepData, nil); err != nil {
			return nil, r.abandonBackward(log, err)
		}
		return e.st.rec, nil
	}
}

// abandonBackward: a rollback's record could not be written (and retrying the
// write cannot help): leave the procedure to the next leader.
func (r *run) abandonBackward(log *slog.Logger, err error) error {
	if errors.Is(err, errAbandon) || isFenced(err) {
		return err
	}
	log.Error("procedure record cannot be stored during rollback; leaving it to the next leader", "err", err)
	return errAbandon
}

// persist writes rec, retrying transient store failures with backoff for as
// long as the run lasts: the step has run, and its result must be stored
// before anything else happens. Fencing and conflicts end it at once; a
// request the store refuses as invalid is returned to the caller.
func (r *run) persist(ctx context.Context, e *entry, rec *record, change dataChange, data []byte) error {
	for attempt := 1; ; attempt++ {
		st, err := r.store.write(ctx, e.st, rec, change, data)
		if err == nil {
			e.st = st
			r.mu.Lock()
			e.state = st.rec.State
			r.mu.Unlock()
			r.m.testSignals.Persisted.Signal(persisted{ID: e.id, State: st.rec.State, Step: st.rec.Step})
			return nil
		}
		switch {
		case ctx.Err() != nil:
			return errAbandon
		case isFenced(err):
			return err
		case errors.Is(err, ErrStateTooLarge) && change != replaceData && len(rec.Error) > minErrorLen:
			// A state change must be recorded: keep less of the error.
			rec.Error = truncate(rec.Error, minErrorLen)
			continue
		case errors.Is(err, ErrInvalidArgument) || errors.Is(err, kv.ErrInvalidArgument):
			return err
		}
		r.m.log.Warn("persisting procedure state failed, retrying", "procedure_id", e.id, "attempt", attempt, "err", err)
		if err := backoff.Sleep(ctx, r.backoff(attempt)); err != nil {
			return errAbandon
		}
	}
}

// backoff is retry_delay doubled per attempt, capped, with jitter so
// procedures failing together do not retry in lockstep.
func (r *run) backoff(attempt int) time.Duration {
	return backoff.Policy{Base: r.m.opts.RetryDelay, Max: maxRetryDelay}.Delay(attempt)
}

// safeExecute turns a panicking step into a (non-retryable) error, so one
// buggy procedure cannot take the leader down.
func safeExecute(ctx context.Context, p Procedure, pc *Context) (s Status, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("procedure step panicked: %v", v)
		}
	}()
	return p.Execute(ctx, pc)
}

func safeRollback(ctx context.Context, p Procedure, pc *Context) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("procedure rollback panicked: %v", v)
		}
	}()
	return p.Rollback(ctx, pc)
}
