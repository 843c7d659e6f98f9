package ddl

import (
	"context"
	"encoding/json"
	"fmt"

	greptimepb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1"
	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/procedure"
	"github.com/pgmetasrv/metasrv/pkg/statuscode"
)

// GreptimeDB's procedure type names, kept so that an operator reading the
// procedure list recognises them.
const (
	typeCreateDatabase = "metasrv-procedure::CreateDatabase"
	typeDropDatabase   = "metasrv-procedure::DropDatabase"
	typeCreateTable    = "metasrv-procedure::CreateTable"
	typeDropTable      = "metasrv-procedure::DropTable"
)

// createDatabase is GreptimeDB's CreateDatabaseProcedure: prepare (refuse an
// existing database unless IF NOT EXISTS), then write the schema key.
type createDatabase struct {
	s    *Service
	data createDatabaseData
}

type createDatabaseData struct {
	State             string            `json:"state"` // prepare, create_metadata
	Catalog           string            `json:"catalog"`
	Schema            string            `json:"schema"`
	CreateIfNotExists bool              `json:"create_if_not_exists"`
	Options           map[string]string `json:"options"`
}

func (s *Service) newCreateDatabase(e *greptimepb.CreateDatabaseExpr) (procedure.Procedure, error) {
	if e == nil {
		return nil, statuscode.MissingParameter("create_database")
	}
	if err := checkNames(e.GetCatalogName(), e.GetSchemaName()); err != nil {
		return nil, err
	}
	d := createDatabaseData{State: statePrepare, Catalog: e.GetCatalogName(), Schema: e.GetSchemaName(),
		CreateIfNotExists: e.GetCreateIfNotExists(), Options: e.GetOptions()}
	if _, err := schemaValue(d.Options); err != nil {
		return nil, err
	}
	return &createDatabase{s: s, data: d}, nil
}

func (s *Service) loadCreateDatabase(raw []byte) (procedure.Procedure, error) {
	p := &createDatabase{s: s}
	if err := json.Unmarshal(raw, &p.data); err != nil {
		return nil, fmt.Errorf("create database state: %w", err)
	}
	return p, nil
}

func (p *createDatabase) Type() string          { return typeCreateDatabase }
func (p *createDatabase) Dump() ([]byte, error) { return json.Marshal(p.data) }

func (p *createDatabase) LockKeys() []procedure.LockKey {
	return []procedure.LockKey{procedure.SharedLock(catalogLock(p.data.Catalog)), procedure.ExclusiveLock(schemaLock(p.data.Catalog, p.data.Schema))}
}

func (p *createDatabase) Execute(ctx context.Context, pc *procedure.Context) (procedure.Status, error) {
	if _, err := p.s.termOf(pc.Term); err != nil {
		return procedure.Status{}, err
	}
	key := greptimekey.SchemaNameKey(p.data.Catalog, p.data.Schema)
	switch p.data.State {
	case statePrepare:
		exists, err := exists(ctx, pc.Store, key)
		if err != nil {
			return procedure.Status{}, err
		}
		if exists {
			if p.data.CreateIfNotExists {
				return procedure.Done(nil), nil
			}
			return procedure.Status{}, p.alreadyExists()
		}
		p.data.State = stateCreateMetadata
		return procedure.Executing(true), nil
	default:
		value, err := schemaValue(p.data.Options)
		if err != nil {
			return procedure.Status{}, err
		}
		resp, err := pc.Store.CompareAndPut(ctx, kv.CompareAndPutRequest{Key: key, Value: value})
		if err != nil {
			return procedure.Status{}, storeError(err)
		}
		// A lost race is only possible with a writer outside DDL (the schema
		// lock serialises ours): IF NOT EXISTS accepts it, as GreptimeDB's
		// schema manager does.
		if !resp.Success && !p.data.CreateIfNotExists {
			return procedure.Status{}, p.alreadyExists()
		}
		pc.Logger.Info("database created", "catalog", p.data.Catalog, "schema", p.data.Schema)
		return procedure.Done(nil), nil
	}
}

func (p *createDatabase) alreadyExists() error {
	return statuscode.Errorf(statuscode.DatabaseAlreadyExists, "Schema already exists, catalog:%s, schema: %s", p.data.Catalog, p.data.Schema)
}

// Rollback has nothing to undo: the only write is the last step's.
func (p *createDatabase) Rollback(context.Context, *procedure.Context) error { return nil }
