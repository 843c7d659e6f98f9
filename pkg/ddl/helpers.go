package ddl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/pgmetasrv/metasrv/pkg/humantime"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/procedure"
	"github.com/pgmetasrv/metasrv/pkg/regionclient"
	"github.com/pgmetasrv/metasrv/pkg/statuscode"
)

// Step names shared by the procedures' persisted states.
const (
	statePrepare        = "prepare"
	stateCreateMetadata = "create_metadata"
)

// checkNames refuses empty names and names holding the key separator: a
// name with "/" would read back as another catalog, schema or table.
func checkNames(names ...string) error {
	for _, n := range names {
		if n == "" {
			return statuscode.Errorf(statuscode.InvalidArguments, "Invalid arguments: catalog, schema and table names must not be empty")
		}
		if strings.ContainsRune(n, '/') {
			return statuscode.Errorf(statuscode.InvalidArguments, "Invalid arguments: name %q must not contain '/'", n)
		}
	}
	return nil
}

// GreptimeDB's lock key names (lock_key.rs), so that two procedures on one
// name serialise.
func catalogLock(catalog string) string { return "__catalog_lock/" + catalog }
func schemaLock(catalog, schema string) string {
	return "__schema_lock/" + catalog + "." + schema
}
func tableNameLock(catalog, schema, table string) string {
	return "__table_name_lock/" + catalog + "." + schema + "." + table
}
func tableLock(id uint32) string { return fmt.Sprintf("__table_lock/%d", id) }

func exists(ctx context.Context, store kv.Backend, key []byte) (bool, error) {
	p, err := kv.Get(ctx, store, key)
	if err != nil {
		return false, storeError(err)
	}
	return p != nil, nil
}

// storeError marks a store failure worth retrying as such: the backend
// unreachable, and a write whose outcome is unknown (every step finds out on
// its next run what its earlier run wrote, so running it again is the only
// safe way on; rolling back could undo a commit). A fencing error goes
// through unchanged, so the procedure stops.
func storeError(err error) error {
	if errors.Is(err, kv.ErrUnavailable) || errors.Is(err, kv.ErrOutcomeUnknown) {
		return procedure.Retryable(err)
	}
	return err
}

// regionError marks a datanode failure worth retrying as such.
func regionError(err error) error {
	if regionclient.Transient(err) {
		return procedure.Retryable(err)
	}
	return err
}

// output is what a DDL procedure returns with Done.
type output struct {
	TableIDs []uint32 `json:"table_ids,omitempty"`
}

func encodeOutput(tables ...uint32) []byte {
	b, _ := json.Marshal(output{TableIDs: tables}) // a slice of numbers always encodes
	return b
}

func decodeOutput(raw []byte) ([]uint32, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	var o output
	if err := json.Unmarshal(raw, &o); err != nil {
		return nil, fmt.Errorf("ddl: procedure output %q: %w", raw, err)
	}
	return o.TableIDs, nil
}

// optTTL is the database option GreptimeDB keeps outside extra_options.
const optTTL = "ttl"

// schemaValue is GreptimeDB's SchemaNameValue built from CREATE DATABASE
// options: ttl parsed as a humantime duration (zero meaning forever), every
// other option in extra_options (sorted, as a BTreeMap).
func schemaValue(opts map[string]string) ([]byte, error) {
	v := struct {
		TTL          *string           `json:"ttl"`
		ExtraOptions map[string]string `json:"extra_options"`
	}{ExtraOptions: map[string]string{}}
	for k, val := range opts {
		if k != optTTL {
			v.ExtraOptions[k] = val
			continue
		}
		d, err := humantime.Parse(val)
		if err != nil {
			return nil, statuscode.Errorf(statuscode.InvalidArguments, "Failed to parse value %s into key %s", val, optTTL)
		}
		ttl := "forever"
		if d > 0 {
			ttl, _ = humantime.Format(d) // d > 0: never an error
		}
		v.TTL = &ttl
	}
	return json.Marshal(v)
}
