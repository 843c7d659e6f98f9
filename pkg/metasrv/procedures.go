package metasrv

import (
	"context"

	"github.com/pgmetasrv/metasrv/pkg/procedure"
)

// ProcedureListener runs the procedure manager while the node leads: each term
// resumes the unfinished procedures on that term's fenced store.
type ProcedureListener struct {
	Manager *procedure.Manager
}

func (l ProcedureListener) Name() string { return "procedure_manager" }

func (l ProcedureListener) Start(ctx context.Context, t Term) error {
	return l.Manager.StartTerm(ctx, t.ID, t.Store)
}

func (l ProcedureListener) Stop() { l.Manager.Stop() }
