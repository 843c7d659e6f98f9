package pgelection

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/pgmetasrv/metasrv/pkg/election"
)

// Fence checks, inside a writer's transaction, that the writer's term is
// still the current one. Leader-only writers (the KV leader path, the
// procedure manager) run Check before committing.
type Fence struct {
	e    *Elector
	term int64
}

// Fence returns the fence of term, the term the writer believes it leads.
func (e *Elector) Fence(term int64) Fence { return Fence{e: e, term: term} }

// Term is the term the fence admits.
func (f Fence) Term() int64 { return f.term }

// Check fails with a *election.FencedError when this node no longer trusts
// its leadership of the term, or when the election row records another term.
// It reads the row FOR SHARE in tx, so the next leader's term bump waits for
// tx to end: a write that passed Check commits before the new term begins.
// When the row shows a newer term the elector steps down at once.
func (f Fence) Check(ctx context.Context, tx pgx.Tx) error {
	if !f.e.trusts(f.term) {
		return &election.FencedError{Expected: f.term, Actual: f.e.lastTerm()}
	}
	var current int64
	err := tx.QueryRow(ctx, f.e.sql.fence, f.e.lockID).Scan(&current)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("pgelection: fence check of term %d: %w", f.term, err)
	}
	if current != f.term {
		f.e.stepDown(f.term, fmt.Errorf("fenced write: election records term %d", current))
		return &election.FencedError{Expected: f.term, Actual: current}
	}
	return nil
}

// trusts reports whether this node leads term inside its trust window.
func (e *Elector) trusts(term int64) bool {
	return e.IsLeader() && e.lastTerm() == term
}

func (e *Elector) lastTerm() int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.term
}
