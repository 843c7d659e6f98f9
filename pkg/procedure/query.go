package procedure

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Get returns a procedure as last persisted, whoever submitted it.
func (m *Manager) Get(ctx context.Context, id ID) (Info, error) {
	r, err := m.current()
	if err != nil {
		return Info{}, err
	}
	if err := checkID(id); err != nil {
		return Info{}, err
	}
	st, err := r.store.get(ctx, id)
	if err != nil {
		return Info{}, err
	}
	return st.rec.info(), nil
}

func checkID(id ID) error {
	if id == "" || strings.ContainsAny(string(id), "/\x00") || len(id) > 256 {
		return invalidArgf("procedure id %q is not valid: expected a non-empty id of at most 256 bytes without '/'", id)
	}
	return nil
}

// ListFilter selects procedures for List.
type ListFilter struct {
	// States keeps only procedures in one of these states; empty keeps all.
	States []State
	// Type keeps only procedures of this type; empty keeps all.
	Type string
	// Limit caps the page; 0 means no limit.
	Limit int
	// PageToken is the token List returned with the previous page.
	PageToken string
}

// List returns procedures newest first (by submission time, then id) and the
// token of the next page, empty on the last page. It reads every record, so
// its cost grows with the procedures kept (FinishedRetention bounds them).
func (m *Manager) List(ctx context.Context, f ListFilter) ([]Info, string, error) {
	r, err := m.current()
	if err != nil {
		return nil, "", err
	}
	if f.Limit < 0 {
		return nil, "", invalidArgf("list limit must be >= 0, got %d", f.Limit)
	}
	for _, s := range f.States {
		if !s.valid() {
			return nil, "", invalidArgf("unknown procedure state %q (expected one of %v)", s, States)
		}
	}
	var after *pageToken
	if f.PageToken != "" {
		t, err := parsePageToken(f.PageToken)
		if err != nil {
			return nil, "", err
		}
		after = &t
	}
	var out []Info
	err = r.store.scan(ctx, func(st *stored, err error) error {
		if err != nil {
			m.log.Warn("skipping unreadable procedure record", "err", err)
			return nil
		}
		rec := st.rec
		if (len(f.States) > 0 && !slices.Contains(f.States, rec.State)) || (f.Type != "" && rec.Type != f.Type) {
			return nil
		}
		if after != nil && !after.before(rec) {
			return nil
		}
		out = append(out, rec.info())
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	slices.SortFunc(out, func(a, b Info) int {
		if c := b.SubmittedAt.Compare(a.SubmittedAt); c != 0 {
			return c
		}
		return cmp.Compare(b.ID, a.ID)
	})
	next := ""
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
		last := out[len(out)-1]
		next = pageToken{at: last.SubmittedAt.UnixNano(), id: last.ID}.String()
	}
	return out, next, nil
}

// pageToken is the position of the last procedure of a page: "<unix nanos>/<id>".
type pageToken struct {
	at int64
	id ID
}

func (t pageToken) String() string { return strconv.FormatInt(t.at, 10) + "/" + string(t.id) }

func parsePageToken(s string) (pageToken, error) {
	at, id, ok := strings.Cut(s, "/")
	n, err := strconv.ParseInt(at, 10, 64)
	if !ok || err != nil || id == "" {
		return pageToken{}, invalidArgf("page token %q is not one List returned", s)
	}
	return pageToken{at: n, id: ID(id)}, nil
}

// before reports whether rec comes after the token in List's order.
func (t pageToken) before(rec *record) bool {
	at := rec.SubmittedAt.UnixNano()
	return at < t.at || (at == t.at && rec.ID < t.id)
}

// Wait blocks until the procedure reaches a final state and returns it. A
// procedure this manager drives is awaited in memory; any other (submitted to
// a previous leader and not resumed here, or abandoned by this manager) is
// polled every WaitPollInterval. When ctx ends first, Wait returns the
// procedure as last read with ctx's error.
func (m *Manager) Wait(ctx context.Context, id ID) (Info, error) {
	r, err := m.current()
	if err != nil {
		return Info{}, err
	}
	if err := checkID(id); err != nil {
		return Info{}, err
	}
	r.mu.Lock()
	e := r.procs[id]
	r.mu.Unlock()
	if e != nil {
		select {
		case <-e.done:
			if e.final != nil {
				return *e.final, nil
			}
		case <-ctx.Done():
			info, err := m.Get(context.WithoutCancel(ctx), id)
			if err != nil {
				return Info{}, fmt.Errorf("%w (and reading procedure %s failed: %w)", ctx.Err(), id, err)
			}
			return info, ctx.Err()
		}
	}
	t := time.NewTicker(m.opts.WaitPollInterval)
	defer t.Stop()
	for {
		info, err := m.Get(ctx, id)
		if err != nil {
			return info, err
		}
		if info.State.Final() {
			return info, nil
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return info, ctx.Err()
		}
	}
}
