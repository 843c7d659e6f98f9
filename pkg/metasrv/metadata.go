package metasrv

import (
	"context"
	"fmt"

	"github.com/pgmetasrv/metasrv/pkg/kv"
)

// The default catalog and schema every cluster has, under GreptimeDB's keys,
// so a GreptimeDB frontend finds them where it looks.
const (
	DefaultCatalog   = "greptime"
	DefaultSchema    = "public"
	catalogKeyPrefix = "__catalog_name/"
	schemaKeyPrefix  = "__schema_name/"
)

// CatalogKey and SchemaKey name the metadata keys of a catalog and a schema.
func CatalogKey(catalog string) []byte { return []byte(catalogKeyPrefix + catalog) }

func SchemaKey(catalog, schema string) []byte {
	return []byte(schemaKeyPrefix + catalog + "/" + schema)
}

// initMetadata creates the default catalog and schema if missing (the seed's
// table_metadata_manager.init()). Put-if-absent keeps it idempotent, and
// running it on the leader's fenced store keeps it out of any other leader's
// way.
func initMetadata(ctx context.Context, store kv.Backend) error {
	for _, key := range [][]byte{CatalogKey(DefaultCatalog), SchemaKey(DefaultCatalog, DefaultSchema)} {
		if _, err := store.CompareAndPut(ctx, kv.CompareAndPutRequest{Key: key, Value: []byte("{}")}); err != nil {
			return fmt.Errorf("create %q: %w", key, err)
		}
	}
	return nil
}
