package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"github.com/pgmetasrv/metasrv/pkg/server/apierr"
)

// errorBody is every error response.
type errorBody struct {
	Error string `json:"error"`
	// Code is the canonical name of the gRPC code the same failure gets on
	// the gRPC API ("UNAVAILABLE", "INVALID_ARGUMENT"), and Reason its
	// metasrv ErrorInfo reason ("NOT_LEADER"), when any: both come from
	// package apierr's map, as does the HTTP status. Set on the failures of
	// the store, the election and the procedure manager.
	Code   string `json:"code,omitempty"`
	Reason string `json:"reason,omitempty"`
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

// fail answers err with the status and code that package apierr maps it to,
// the ones the gRPC API answers the same failure with. A message never
// carries an internal cause (storage errors may name internal hosts): the
// log does, for the server's own faults.
func (h *handlers) fail(w http.ResponseWriter, r *http.Request, err error) {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		// Reading the request, not an answer of the core: HTTP's own.
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is over the limit of %d bytes (http.body_limit)", tooLarge.Limit))
		return
	}
	a, _ := apierr.Classify(err)
	ctx := r.Context()
	switch {
	case a.Fault && ctx.Err() == nil:
		h.log.ErrorContext(ctx, "admin request failed", "method", r.Method, "path", r.URL.Path, "code", a.CodeName(), "err", err)
	case errors.Is(err, context.DeadlineExceeded):
		// Most likely the admin's own request timeout (Deps.RequestTimeout).
		h.log.WarnContext(ctx, "admin request timed out", "method", r.Method, "path", r.URL.Path, "err", err)
	case h.log.Enabled(ctx, slog.LevelDebug):
		h.log.DebugContext(ctx, "admin request refused", "method", r.Method, "path", r.URL.Path, "code", a.CodeName(), "err", err)
	}
	writeJSON(w, a.HTTPStatus(), errorBody{Error: a.Message, Code: a.CodeName(), Reason: a.Reason, Leader: a.Leader})
}

// leaderOnly turns the procedure manager's "not running here" into the
// not-leader refusal that tells the caller where to go, naming the leader
// when the election knows it.
func (h *handlers) leaderOnly(ctx context.Context, err error) error {
	return apierr.LeaderOnly(err, func() string {
		l, err := h.cluster.Leader(ctx)
		if err != nil {
			return ""
		}
		return l.Addr
	})
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
