package region

import "fmt"

// RegionID is GreptimeDB's RegionId: the table id in the high 32 bits, the
// region number in the low 32.
func RegionID(tableID, regionNumber uint32) uint64 { return uint64(tableID)<<32 | uint64(regionNumber) }

// TableID is the table a region id belongs to.
func TableID(regionID uint64) uint32 { return uint32(regionID >> 32) }

// RegionNumber is a region id's number within its table.
func RegionNumber(regionID uint64) uint32 { return uint32(regionID) }

// FormatRegionID writes a region id as GreptimeDB's messages do:
// "4398046511105(1024, 1)".
func FormatRegionID(regionID uint64) string {
	return fmt.Sprintf("%d(%d, %d)", regionID, TableID(regionID), RegionNumber(regionID))
}
