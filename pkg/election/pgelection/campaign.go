package pgelection

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgmetasrv/metasrv/pkg/backoff"
)

var (
	errResigned     = errors.New("resigned")
	errDeposed      = errors.New("leadership lost: trust window expired or a fenced write saw a newer term")
	errLockLost     = errors.New("advisory lock or term no longer held by this session")
	errTrustExpired = errors.New("renewal succeeded after the trust window had ended")
)

// run is the election loop: one session after another until ctx ends.
func (e *Elector) run(ctx context.Context) {
	failures := 0
	for ctx.Err() == nil {
		err := e.runSession(ctx)
		if ctx.Err() != nil {
			return
		}
		var pause time.Duration
		switch {
		case errors.Is(err, errResigned):
			// Let the followers, woken by our NOTIFY, win; then campaign again.
			failures = 0
			pause = e.campaignInterval + rand.N(e.campaignInterval)
		case err != nil:
			failures++
			pause = e.backoff(failures)
			e.logger.Warn("election session failed; reconnecting", "err", err, "retry_in", pause)
		}
		if err == nil {
			failures = 0
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
	}
}

// backoff is capped exponential with jitter (half fixed, half random), so a
// restarted PostgreSQL is not hit by every node at the same instant.
func (e *Elector) backoff(failures int) time.Duration {
	return backoff.Policy{Base: 50 * time.Millisecond, Max: max(time.Second, 4*e.campaignInterval)}.Delay(failures)
}

// runSession connects, campaigns until it wins, and leads until it must not.
// The session is closed whatever happens, so its lock is never left behind.
func (e *Elector) runSession(ctx context.Context) error {
	s, err := e.connect(ctx)
	if err != nil {
		return err
	}
	defer e.closeSession(s)
	e.logger.Debug("election session open", "pid", s.pid)

	term, trustFrom, err := e.campaign(ctx, s)
	if err != nil || term == 0 {
		return err
	}
	err = e.lead(ctx, s, term, trustFrom)
	e.stepDown(term, err)
	e.answerResigns(nil)
	return err
}

// campaign tries the lock every campaign interval, or at once when a
// resignation is notified, until it wins (returning the new term and the
// instant its trust window starts) or the session fails. It returns term 0
// when ctx ends.
func (e *Elector) campaign(ctx context.Context, s *session) (int64, time.Time, error) {
	for ctx.Err() == nil {
		start := time.Now()
		qctx, cancel := queryCtx(ctx, start.Add(e.lease))
		var won bool
		err := s.conn.QueryRow(qctx, e.sql.tryLock, e.lockID).Scan(&won)
		cancel()
		if err != nil {
			return 0, time.Time{}, fmt.Errorf("try advisory lock %d: %w", e.lockID, err)
		}
		if won {
			term, err := e.takeOffice(ctx, s, start)
			return term, start, err
		}
		e.checkHolder(ctx)
		e.testSignals.Campaigned.Signal(struct{}{})
		wctx, cancel := context.WithTimeout(ctx, e.campaignInterval)
		_, err = s.conn.WaitForNotification(wctx)
		timedOut := wctx.Err() != nil
		cancel()
		if err != nil && !(timedOut && !s.conn.IsClosed()) {
			return 0, time.Time{}, fmt.Errorf("wait for resignations: %w", err)
		}
	}
	return 0, time.Time{}, nil
}

// takeOffice bumps the term for a freshly won lock and broadcasts Elected.
// The trust window starts at the try-lock statement's start: PostgreSQL's
// idle timer only starts at the end of our last statement, later still.
func (e *Elector) takeOffice(ctx context.Context, s *session, start time.Time) (int64, error) {
	qctx, cancel := queryCtx(ctx, start.Add(e.trustSpan))
	defer cancel()
	var term int64
	if err := s.conn.QueryRow(qctx, e.sql.bumpTerm, e.lockID, e.addr, e.cfg.NodeInfo()).Scan(&term); err != nil {
		return 0, fmt.Errorf("bump election term: %w", err)
	}
	e.testSignals.TermBumped.Signal(term)
	e.mu.Lock()
	defer e.mu.Unlock()
	trustUntil := start.Add(e.trustSpan)
	if !time.Now().Before(trustUntil) {
		return 0, fmt.Errorf("term %d won too late: the trust window had already ended", term)
	}
	if !e.stream.Elected(term, trustUntil) {
		return 0, fmt.Errorf("term %d won while the election stopped", term)
	}
	e.armWatchdogLocked(term, trustUntil)
	e.testSignals.GainedLeadership.Signal(term)
	e.logger.Info("elected leader", "term", term, "pid", s.pid)
	return term, nil
}

// lead renews the lease every lease/3, serves resign requests and returns
// when leadership ends (errResigned, errDeposed, a session error, or nil when
// ctx ended and the node resigned for Stop). Between renewals it waits for
// notifications, which reads the socket: a terminated session is noticed at
// once, not at the next renewal.
func (e *Elector) lead(ctx context.Context, s *session, term int64, trustFrom time.Time) error {
	nextRenew := trustFrom.Add(e.renewEvery)
	for {
		e.mu.Lock()
		lease := e.stream.Lease()
		leading := lease.Leading && lease.Term == term
		resign := len(e.resignWaiters) > 0
		var wctx context.Context
		var cancel context.CancelFunc
		if leading && !resign && ctx.Err() == nil {
			wctx, cancel = context.WithDeadline(ctx, nextRenew)
			e.wake = cancel
		}
		e.mu.Unlock()

		switch {
		case !leading:
			return errDeposed
		case resign || ctx.Err() != nil:
			err := e.resign(ctx, s, term)
			e.answerResigns(err)
			if ctx.Err() != nil {
				return err
			}
			if err != nil {
				return fmt.Errorf("resign term %d: %w", term, err)
			}
			return errResigned
		}

		_, err := s.conn.WaitForNotification(wctx)
		interrupted := wctx.Err() != nil
		e.mu.Lock()
		e.wake = nil
		e.mu.Unlock()
		cancel()
		if err != nil && !(interrupted && !s.conn.IsClosed()) {
			return fmt.Errorf("election session: %w", err)
		}
		if time.Now().Before(nextRenew) {
			continue // a notification, a resign request, a step-down or Stop
		}
		start := time.Now()
		if err := e.renew(ctx, s, term, start); err != nil {
			return err
		}
		nextRenew = start.Add(e.renewEvery)
	}
}

// renew checks that this session still holds the lock and the term, and
// extends the trust window from the renewal's start.
func (e *Elector) renew(ctx context.Context, s *session, term int64, start time.Time) error {
	qctx, cancel := queryCtx(ctx, e.stream.Lease().TrustUntil)
	defer cancel()
	var got int64
	err := s.conn.QueryRow(qctx, e.sql.renew, e.lockID, e.classID, e.objID).Scan(&got)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return errLockLost
	case err != nil:
		return fmt.Errorf("renew term %d: %w", term, err)
	case got != term:
		return fmt.Errorf("%w: session records term %d, led %d", errLockLost, got, term)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	until := start.Add(e.trustSpan)
	if !e.stream.Renew(term, until) {
		return errTrustExpired
	}
	e.armWatchdogLocked(term, until)
	e.testSignals.Renewed.Signal(term)
	return nil
}

// resign steps down, then unlocks and notifies the followers in one
// statement. The caller closes the session.
func (e *Elector) resign(ctx context.Context, s *session, term int64) error {
	e.stepDown(term, errResigned)
	qctx, cancel := queryCtx(ctx, time.Now().Add(e.lease))
	defer cancel()
	var unlocked bool
	if err := s.conn.QueryRow(qctx, e.sql.resign, e.lockID, e.channel, strconv.FormatInt(term, 10)).Scan(&unlocked, nil); err != nil {
		return fmt.Errorf("unlock and notify: %w", err)
	}
	if !unlocked {
		return errLockLost
	}
	return nil
}

// stepDown ends this node's leadership of term, if it still holds it, and
// broadcasts StepDown. Safe to call from any goroutine, any number of times.
func (e *Elector) stepDown(term int64, reason error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.stepDownLocked(term, reason)
}

func (e *Elector) stepDownLocked(term int64, reason error) bool {
	if !e.stream.StepDown(term) {
		return false
	}
	if e.watchdog != nil {
		e.watchdog.Stop()
	}
	e.testSignals.LostLeadership.Signal(term)
	if e.wake != nil {
		e.wake() // let the loop close the session now
	}
	attrs := []any{"term", term}
	if reason != nil {
		attrs = append(attrs, "reason", reason.Error())
	}
	e.logger.Info("stepped down", attrs...)
	return true
}

// armWatchdogLocked makes the end of the trust window step down even if the
// loop is stuck in a statement, so StepDown goes out on time.
func (e *Elector) armWatchdogLocked(term int64, until time.Time) {
	if e.watchdog != nil {
		e.watchdog.Stop()
	}
	e.watchdog = time.AfterFunc(time.Until(until), func() { e.expire(term) })
}

func (e *Elector) expire(term int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if l := e.stream.Lease(); l.Leading && l.Term == term && !l.Trusted(time.Now()) {
		e.stepDownLocked(term, errors.New("trust window ended without a successful renewal"))
	}
}

// answerResigns releases every Resign call waiting on the loop.
func (e *Elector) answerResigns(err error) {
	e.mu.Lock()
	waiters := e.resignWaiters
	e.resignWaiters = nil
	e.mu.Unlock()
	for _, w := range waiters {
		w <- err
	}
}
