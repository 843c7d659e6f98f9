package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/pgmetasrv/metasrv/pkg/election"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/procedure"
)

// errorBody is every error response.
type errorBody struct {
	Error string `json:"error"`
	// Leader is set when the request must be sent to the leader, and it is known.
	Leader string `json:"leader,omitempty"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		// Only the handlers' own plain structs are marshalled here.
		code, body = http.StatusInternalServerError, []byte(`{"error":"internal error; see the server log"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(append(body, '\n'))
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, errorBody{Error: msg})
}

// fail answers err with the status an operator or a script can act on. The
// messages of storage errors may name internal hosts, so they go to the log
// only.
func (h *handlers) fail(w http.ResponseWriter, r *http.Request, err error) {
	var notLeader *election.NotLeaderError
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is over the limit of %d bytes (http.body_limit)", tooLarge.Limit))
	case errors.As(err, &notLeader):
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: notLeader.Error() + "; send this request to the leader", Leader: notLeader.Leader})
	case errors.Is(err, election.ErrFenced):
		writeError(w, http.StatusServiceUnavailable, "this node lost its leadership while serving the request; the change was not applied, retry on the new leader")
	case errors.Is(err, election.ErrNoLeader):
		writeError(w, http.StatusServiceUnavailable, "no leader is elected right now; retry shortly")
	case errors.Is(err, kv.ErrInvalidArgument):
		// Built from the request and naming the limit: what the caller needs.
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, kv.ErrOutcomeUnknown):
		h.log.ErrorContext(r.Context(), "admin request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		writeError(w, http.StatusInternalServerError, "the storage backend lost the result of the write: it may or may not have been applied; read the state before retrying")
	case errors.Is(err, kv.ErrUnavailable):
		h.log.WarnContext(r.Context(), "admin request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		writeError(w, http.StatusServiceUnavailable, "the storage backend is unavailable; the request was not applied, retry shortly")
	case errors.Is(err, context.DeadlineExceeded):
		h.log.WarnContext(r.Context(), "admin request timed out", "method", r.Method, "path", r.URL.Path, "err", err)
		writeError(w, http.StatusGatewayTimeout, "the request did not complete in time; it may or may not have been applied")
	case errors.Is(err, context.Canceled):
		writeError(w, http.StatusServiceUnavailable, "request canceled")
	default:
		h.log.ErrorContext(r.Context(), "admin request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		writeError(w, http.StatusInternalServerError, "internal error; see the server log")
	}
}

// notLeader is the refusal of a leader-only request on this node, naming the
// leader when the election knows it.
func (h *handlers) notLeader(ctx context.Context) error {
	l, err := h.cluster.Leader(ctx)
	if err != nil {
		return &election.NotLeaderError{}
	}
	return &election.NotLeaderError{Leader: l.Addr}
}

// leaderOnly turns the procedure manager's "not running here" into the
// not-leader refusal that tells the caller where to go.
func (h *handlers) leaderOnly(ctx context.Context, err error) error {
	if errors.Is(err, procedure.ErrNotRunning) {
		return h.notLeader(ctx)
	}
	return err
}

func (h *handlers) limitBody(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > h.maxBody {
			writeError(w, http.StatusRequestEntityTooLarge,
				fmt.Sprintf("request body is %d bytes, over the limit of %d bytes (http.body_limit)", r.ContentLength, h.maxBody))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, h.maxBody)
		next(w, r)
	}
}

// discardBody reads a body the endpoint does not use, so an oversized one is
// refused the same way on every POST.
func discardBody(r *http.Request) error {
	_, err := io.Copy(io.Discard, r.Body)
	return err
}
