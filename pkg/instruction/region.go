package instruction

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// RegionID is GreptimeDB's RegionId: the table id in the high 32 bits, the
// region number in the low 32. It is written as a bare number; a string of
// digits is read too (GreptimeDB's str_or_u64).
type RegionID uint64

// NewRegionID is RegionId::new(table_id, region_number).
func NewRegionID(tableID, regionNumber uint32) RegionID {
	return RegionID(uint64(tableID)<<32 | uint64(regionNumber))
}

// TableID is the id of the region's table.
func (r RegionID) TableID() uint32 { return uint32(r >> 32) }

// RegionNumber is the region's number within its table.
func (r RegionID) RegionNumber() uint32 { return uint32(r) }

// String is GreptimeDB's Display of a RegionId: "4398046511105(1024, 1)".
func (r RegionID) String() string {
	return fmt.Sprintf("%d(%d, %d)", uint64(r), r.TableID(), r.RegionNumber())
}

func (r RegionID) MarshalJSON() ([]byte, error) { return strconv.AppendUint(nil, uint64(r), 10), nil }

func (r *RegionID) UnmarshalJSON(data []byte) error {
	if isNull(data) {
		return errors.New("RegionId: null, want a number")
	}
	var n uint64
	if err := json.Unmarshal(data, &n); err == nil {
		*r = RegionID(n)
		return nil
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("RegionId: want a u64 or a string of one, got %s", data)
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return fmt.Errorf("RegionId: %w", err)
	}
	*r = RegionID(n)
	return nil
}

// RegionIdent names a region on a datanode (every field required).
type RegionIdent struct {
	DatanodeID   uint64 `json:"datanode_id"`
	TableID      uint32 `json:"table_id"`
	RegionNumber uint32 `json:"region_number"`
	Engine       string `json:"engine"`
}

// RegionID is the ident's region.
func (r RegionIdent) RegionID() RegionID { return NewRegionID(r.TableID, r.RegionNumber) }

func (r RegionIdent) MarshalJSON() ([]byte, error) {
	type plain RegionIdent
	return encode(plain(r))
}

func (r *RegionIdent) UnmarshalJSON(data []byte) error {
	var out RegionIdent
	if err := decodeObject("RegionIdent", data,
		required("datanode_id", &out.DatanodeID), required("table_id", &out.TableID),
		required("region_number", &out.RegionNumber), required("engine", &out.Engine)); err != nil {
		return err
	}
	*r = out
	return nil
}

// OpenRegionReason is why a region is opened; "" is none (the field is
// then left out).
type OpenRegionReason string

// GreptimeDB's open-source reasons (RegionFollower is enterprise-only).
const (
	OpenForRegionMigration OpenRegionReason = "RegionMigration"
	OpenForRegionFailover  OpenRegionReason = "RegionFailover"
)

func (r *OpenRegionReason) UnmarshalJSON(data []byte) error {
	return unitEnum("OpenRegionReason", data, (*string)(r), string(OpenForRegionMigration), string(OpenForRegionFailover))
}

// unitEnum reads a Rust enum of unit variants, written as the variant's
// name, into dst, refusing any other name.
func unitEnum(typ string, data []byte, dst *string, names ...string) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil || isNull(data) {
		return fmt.Errorf("%s: want one of %q, got %s", typ, names, data)
	}
	for _, n := range names {
		if s == n {
			*dst = s
			return nil
		}
	}
	return fmt.Errorf("%s: unknown variant %q, expected one of %q", typ, s, names)
}

// RegionRequirements are what the region's storage must offer.
type RegionRequirements struct {
	ObjectStorage bool `json:"object_storage"`
}

func (r RegionRequirements) MarshalJSON() ([]byte, error) {
	type plain RegionRequirements
	return encode(plain(r))
}

func (r *RegionRequirements) UnmarshalJSON(data []byte) error {
	var out RegionRequirements
	if err := decodeObject("RegionRequirements", data, defaulted("object_storage", &out.ObjectStorage)); err != nil {
		return err
	}
	*r = out
	return nil
}

// OpenRegion asks a datanode to open one region.
type OpenRegion struct {
	RegionIdent       RegionIdent
	RegionStoragePath string
	RegionOptions     map[string]string
	// RegionWalOptions are keyed by region number (strings in the JSON).
	RegionWalOptions map[uint32]string
	SkipWalReplay    bool
	Reason           OpenRegionReason
	Requirements     RegionRequirements
}

type openRegionJSON struct {
	RegionIdent       RegionIdent        `json:"region_ident"`
	RegionStoragePath string             `json:"region_storage_path"`
	RegionOptions     map[string]string  `json:"region_options"`
	RegionWalOptions  map[string]string  `json:"region_wal_options"`
	SkipWalReplay     bool               `json:"skip_wal_replay"`
	Reason            OpenRegionReason   `json:"reason,omitempty"`
	Requirements      RegionRequirements `json:"requirements"`
}

func (o OpenRegion) MarshalJSON() ([]byte, error) {
	wal := make(map[string]string, len(o.RegionWalOptions))
	for n, v := range o.RegionWalOptions {
		wal[strconv.FormatUint(uint64(n), 10)] = v
	}
	opts := o.RegionOptions
	if opts == nil {
		opts = map[string]string{}
	}
	return encode(openRegionJSON{
		RegionIdent: o.RegionIdent, RegionStoragePath: o.RegionStoragePath, RegionOptions: opts,
		RegionWalOptions: wal, SkipWalReplay: o.SkipWalReplay, Reason: o.Reason, Requirements: o.Requirements,
	})
}

func (o *OpenRegion) UnmarshalJSON(data []byte) error {
	var out OpenRegion
	var wal map[string]string
	if err := decodeObject("OpenRegion", data,
		required("region_ident", &out.RegionIdent), required("region_storage_path", &out.RegionStoragePath),
		required("region_options", &stringMap{&out.RegionOptions}), defaulted("region_wal_options", &stringMap{&wal}),
		defaulted("skip_wal_replay", &out.SkipWalReplay), option("reason", &out.Reason),
		defaulted("requirements", &out.Requirements)); err != nil {
		return err
	}
	out.RegionWalOptions = make(map[uint32]string, len(wal))
	for k, v := range wal {
		n, err := strconv.ParseUint(k, 10, 32)
		if err != nil {
			return fmt.Errorf("OpenRegion.region_wal_options: key %q is not a region number: %w", k, err)
		}
		out.RegionWalOptions[uint32(n)] = v
	}
	*o = out
	return nil
}

// DowngradeRegion asks a region's leader to become a downgrading leader.
type DowngradeRegion struct {
	RegionID RegionID
	// FlushTimeout bounds the flush before the downgrade; nil: no flush.
	FlushTimeout *time.Duration
}

func (d DowngradeRegion) MarshalJSON() ([]byte, error) {
	var ft *serdeDuration
	if d.FlushTimeout != nil {
		ft = new(serdeDuration(*d.FlushTimeout))
	}
	return encode(struct {
		RegionID     RegionID       `json:"region_id"`
		FlushTimeout *serdeDuration `json:"flush_timeout"`
	}{d.RegionID, ft})
}

func (d *DowngradeRegion) UnmarshalJSON(data []byte) error {
	var out DowngradeRegion
	var ft *serdeDuration
	if err := decodeObject("DowngradeRegion", data, required("region_id", &out.RegionID), option("flush_timeout", &ft)); err != nil {
		return err
	}
	if ft != nil {
		out.FlushTimeout = new(time.Duration(*ft))
	}
	*d = out
	return nil
}

// UpgradeRegion asks a follower region to become the leader once it has
// replayed its WAL; nil pointers are Rust's None.
type UpgradeRegion struct {
	RegionID              RegionID
	LastEntryID           *uint64
	MetadataLastEntryID   *uint64
	ReplayTimeout         time.Duration
	LocationID            *uint64
	ReplayEntryID         *uint64
	MetadataReplayEntryID *uint64
}

type upgradeRegionJSON struct {
	RegionID              RegionID      `json:"region_id"`
	LastEntryID           *uint64       `json:"last_entry_id"`
	MetadataLastEntryID   *uint64       `json:"metadata_last_entry_id"`
	ReplayTimeout         humanDuration `json:"replay_timeout"`
	LocationID            *uint64       `json:"location_id"`
	ReplayEntryID         *uint64       `json:"replay_entry_id,omitempty"`
	MetadataReplayEntryID *uint64       `json:"metadata_replay_entry_id,omitempty"`
}

func (u UpgradeRegion) MarshalJSON() ([]byte, error) {
	return encode(upgradeRegionJSON{
		RegionID: u.RegionID, LastEntryID: u.LastEntryID, MetadataLastEntryID: u.MetadataLastEntryID,
		ReplayTimeout: humanDuration(u.ReplayTimeout), LocationID: u.LocationID,
		ReplayEntryID: u.ReplayEntryID, MetadataReplayEntryID: u.MetadataReplayEntryID,
	})
}

func (u *UpgradeRegion) UnmarshalJSON(data []byte) error {
	var out UpgradeRegion
	var timeout humanDuration
	if err := decodeObject("UpgradeRegion", data,
		required("region_id", &out.RegionID), option("last_entry_id", &out.LastEntryID),
		option("metadata_last_entry_id", &out.MetadataLastEntryID), required("replay_timeout", &timeout),
		option("location_id", &out.LocationID), option("replay_entry_id", &out.ReplayEntryID),
		option("metadata_replay_entry_id", &out.MetadataReplayEntryID)); err != nil {
		return err
	}
	out.ReplayTimeout = time.Duration(timeout)
	*u = out
	return nil
}

// FlushStrategy is whether the datanode answers a flush (Sync) or only
// takes it as a hint (Async, no reply).
type FlushStrategy string

const (
	FlushSync  FlushStrategy = "Sync"
	FlushAsync FlushStrategy = "Async"
)

func (s *FlushStrategy) UnmarshalJSON(data []byte) error {
	return unitEnum("FlushStrategy", data, (*string)(s), string(FlushSync), string(FlushAsync))
}

// FlushErrorStrategy is whether a batch flush stops at the first error.
type FlushErrorStrategy string

const (
	FlushFailFast FlushErrorStrategy = "FailFast"
	FlushTryAll   FlushErrorStrategy = "TryAll"
)

func (s *FlushErrorStrategy) UnmarshalJSON(data []byte) error {
	return unitEnum("FlushErrorStrategy", data, (*string)(s), string(FlushFailFast), string(FlushTryAll))
}

// RegionFlushReason is what triggered a flush; "" is none (left out).
type RegionFlushReason string

const (
	FlushForRegionMigration RegionFlushReason = "RegionMigration"
	FlushForRepartition     RegionFlushReason = "Repartition"
	FlushForRemoteWalPrune  RegionFlushReason = "RemoteWalPrune"
	FlushForClosing         RegionFlushReason = "Closing"
	FlushForDowngrading     RegionFlushReason = "Downgrading"
)

func (r *RegionFlushReason) UnmarshalJSON(data []byte) error {
	return unitEnum("RegionFlushReason", data, (*string)(r), string(FlushForRegionMigration), string(FlushForRepartition),
		string(FlushForRemoteWalPrune), string(FlushForClosing), string(FlushForDowngrading))
}
