package greptimekey

import (
	"bytes"
	"fmt"
)

// TombstonePrefix is prepended to a key to tombstone it (key/tombstone.rs):
// dropping a table first moves its metadata keys under it, value unchanged,
// so that the drop can be rolled back; the last step of the drop deletes the
// tombstones.
const TombstonePrefix = "__tombstone/"

// TombstonedTableNamePrefix selects the tombstoned table names, which is how
// GreptimeDB lists dropped tables that can still be recovered.
const TombstonedTableNamePrefix = TombstonePrefix + TableNamePrefix

// TombstoneKey is the tombstone of key: __tombstone/{key}.
func TombstoneKey(key []byte) []byte {
	out := make([]byte, 0, len(TombstonePrefix)+len(key))
	return append(append(out, TombstonePrefix...), key...)
}

// StripTombstonePrefix returns the key a tombstone key stands for.
func StripTombstonePrefix(key []byte) ([]byte, error) {
	rest, ok := bytes.CutPrefix(key, []byte(TombstonePrefix))
	if !ok {
		return nil, fmt.Errorf("%w: %q does not start with %q", ErrInvalidKey, key, TombstonePrefix)
	}
	return rest, nil
}
