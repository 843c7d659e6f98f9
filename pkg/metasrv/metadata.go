package metasrv

import (
	"context"
	"fmt"

	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/kv"
)

// defaultMetadata is what GreptimeDB's TableMetadataManager::init creates on
// every metasrv start: the default catalog, and in it the default, the
// information and the private schema, with GreptimeDB's values, so that a
// GreptimeDB frontend finds them where and as it looks for them.
func defaultMetadata() []kv.KeyValue {
	const c = greptimekey.DefaultCatalog
	return []kv.KeyValue{
		{Key: greptimekey.CatalogNameKey(c), Value: greptimekey.CatalogNameValue()},
		{Key: greptimekey.SchemaNameKey(c, greptimekey.DefaultSchema), Value: greptimekey.DefaultSchemaNameValue()},
		{Key: greptimekey.SchemaNameKey(c, greptimekey.InformationSchema), Value: greptimekey.DefaultSchemaNameValue()},
		{Key: greptimekey.SchemaNameKey(c, greptimekey.PrivateSchema), Value: greptimekey.DefaultSchemaNameValue()},
	}
}

// initMetadata creates the default catalog and schemas where missing (the
// seed's table_metadata_manager.init()). Each is a compare-and-put expecting
// the key absent, as GreptimeDB's create(.., if_not_exists): idempotent, an
// existing value (whoever wrote it) is left alone, and running it on the
// leader's fenced store keeps it out of any other leader's way.
func initMetadata(ctx context.Context, store kv.Backend) error {
	for _, e := range defaultMetadata() {
		if _, err := store.CompareAndPut(ctx, kv.CompareAndPutRequest{Key: e.Key, Value: e.Value}); err != nil {
			return fmt.Errorf("create %q: %w", e.Key, err)
		}
	}
	return nil
}
