package greptimekey

import (
	"errors"
	"strconv"
)

// RegionID is store-api's RegionId: the table id in the high 32 bits, the
// region number in the low 32 (descriptors.rs RegionId::new).
func RegionID(tableID, regionNumber uint32) uint64 {
	return uint64(tableID)<<32 | uint64(regionNumber)
}

// RegionTableID is the table id of a region id.
func RegionTableID(regionID uint64) uint32 { return uint32(regionID >> 32) }

// RegionNumber is the region number of a region id: its low 32 bits, the
// region's place in its table (ddl/table_meta.rs numbers them 0, 1, ...).
func RegionNumber(regionID uint64) uint32 { return uint32(regionID) }

// RegionStoragePath is where every region of a table in catalog.schema keeps
// its files, relative to the datanode's data home (ddl/utils.rs
// region_storage_path): "{catalog}/{schema}". GreptimeDB writes it into each
// __dn_table value and each region CreateRequest.
func RegionStoragePath(catalog, schema string) string { return catalog + "/" + schema }

// parseRustUint parses an unsigned decimal as Rust's from_str does, which
// (unlike strconv) also takes one leading '+'. GreptimeDB reads region ids
// written as strings and the region numbers of region_wal_options this way.
func parseRustUint(s string, bits int) (uint64, error) {
	digits := s
	if len(digits) > 1 && digits[0] == '+' {
		digits = digits[1:]
	}
	if !allDigits([]byte(digits)) {
		return 0, errors.New("invalid digit found in string " + strconv.Quote(s))
	}
	return strconv.ParseUint(digits, 10, bits)
}
