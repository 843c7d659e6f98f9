package instruction

import (
	"encoding/json"
	"fmt"
)

// ReplyType is an InstructionReply's "type" tag.
type ReplyType string

const (
	ReplyOpenRegions      ReplyType = "open_regions"
	ReplyCloseRegions     ReplyType = "close_regions"
	ReplyUpgradeRegions   ReplyType = "upgrade_regions"
	ReplyDowngradeRegions ReplyType = "downgrade_regions"
	ReplyFlushRegions     ReplyType = "flush_regions"
)

// Reply is GreptimeDB's InstructionReply: one of OpenRegionsReply,
// CloseRegionsReply, UpgradeRegionsReply, DowngradeRegionsReply and
// FlushRegionsReply. Write it with EncodeReply, read it with DecodeReply.
type Reply interface {
	Type() ReplyType
	isReply()
}

// SimpleReply is a success flag and, on failure, GreptimeDB's error text.
type SimpleReply struct {
	Result bool
	Error  *string // nil: none
}

// OpenRegionsReply answers OpenRegions.
type OpenRegionsReply SimpleReply

// CloseRegionsReply answers CloseRegions (a region that is not there counts
// as closed).
type CloseRegionsReply SimpleReply

// UpgradeRegionsReply answers UpgradeRegions, one entry per region.
type UpgradeRegionsReply struct{ Replies []UpgradeRegionReply }

// UpgradeRegionReply is one region's answer to an upgrade.
type UpgradeRegionReply struct {
	RegionID RegionID // 0 from datanodes too old to send it
	Ready    bool     // the WAL is replayed: the region leads
	Exists   bool
	Error    *string
}

// DowngradeRegionsReply answers DowngradeRegions, one entry per region.
type DowngradeRegionsReply struct{ Replies []DowngradeRegionReply }

// DowngradeRegionReply is one region's answer to a downgrade.
type DowngradeRegionReply struct {
	RegionID            RegionID // 0 from datanodes too old to send it
	LastEntryID         *uint64
	MetadataLastEntryID *uint64
	Exists              bool
	Error               *string
}

// FlushRegionsReply answers a Sync FlushRegions.
type FlushRegionsReply struct {
	Results        []FlushResult
	OverallSuccess bool
}

// FlushResult is one region's flush: Err nil is Ok(()).
type FlushResult struct {
	RegionID RegionID
	Err      *string
}

func (OpenRegionsReply) Type() ReplyType      { return ReplyOpenRegions }
func (CloseRegionsReply) Type() ReplyType     { return ReplyCloseRegions }
func (UpgradeRegionsReply) Type() ReplyType   { return ReplyUpgradeRegions }
func (DowngradeRegionsReply) Type() ReplyType { return ReplyDowngradeRegions }
func (FlushRegionsReply) Type() ReplyType     { return ReplyFlushRegions }

func (OpenRegionsReply) isReply()      {}
func (CloseRegionsReply) isReply()     {}
func (UpgradeRegionsReply) isReply()   {}
func (DowngradeRegionsReply) isReply() {}
func (FlushRegionsReply) isReply()     {}

type simpleReplyJSON struct {
	Type   ReplyType `json:"type"`
	Result bool      `json:"result"`
	Error  *string   `json:"error"`
}

type upgradeRegionReplyJSON struct {
	RegionID RegionID `json:"region_id"`
	Ready    bool     `json:"ready"`
	Exists   bool     `json:"exists"`
	Error    *string  `json:"error"`
}

type downgradeRegionReplyJSON struct {
	RegionID            RegionID `json:"region_id"`
	LastEntryID         *uint64  `json:"last_entry_id"`
	MetadataLastEntryID *uint64  `json:"metadata_last_entry_id"`
	Exists              bool     `json:"exists"`
	Error               *string  `json:"error"`
}

// flushResultJSON is the (RegionId, Result<(), String>) tuple:
// [id, {"Ok":null}] or [id, {"Err":"..."}].
type flushResultJSON FlushResult

func (f flushResultJSON) MarshalJSON() ([]byte, error) {
	var result []byte
	var err error
	if f.Err == nil {
		result, err = encodeVariant("Ok", nil)
	} else {
		result, err = encodeVariant("Err", *f.Err)
	}
	if err != nil {
		return nil, err
	}
	return encode([2]any{f.RegionID, json.RawMessage(result)})
}

// EncodeReply writes r as GreptimeDB's serde_json does: internally tagged,
// {"type":"open_regions",...fields}.
func EncodeReply(r Reply) ([]byte, error) {
	var body any
	switch v := r.(type) {
	case OpenRegionsReply:
		body = simpleReplyJSON{ReplyOpenRegions, v.Result, v.Error}
	case CloseRegionsReply:
		body = simpleReplyJSON{ReplyCloseRegions, v.Result, v.Error}
	case UpgradeRegionsReply:
		replies := make([]upgradeRegionReplyJSON, len(v.Replies))
		for i, u := range v.Replies {
			replies[i] = upgradeRegionReplyJSON(u)
		}
		body = struct {
			Type    ReplyType                `json:"type"`
			Replies []upgradeRegionReplyJSON `json:"replies"`
		}{ReplyUpgradeRegions, replies}
	case DowngradeRegionsReply:
		replies := make([]downgradeRegionReplyJSON, len(v.Replies))
		for i, d := range v.Replies {
			replies[i] = downgradeRegionReplyJSON(d)
		}
		body = struct {
			Type    ReplyType                  `json:"type"`
			Replies []downgradeRegionReplyJSON `json:"replies"`
		}{ReplyDowngradeRegions, replies}
	case FlushRegionsReply:
		results := make([]flushResultJSON, len(v.Results))
		for i, f := range v.Results {
			results[i] = flushResultJSON(f)
		}
		body = struct {
			Type           ReplyType         `json:"type"`
			Results        []flushResultJSON `json:"results"`
			OverallSuccess bool              `json:"overall_success"`
		}{ReplyFlushRegions, results, v.OverallSuccess}
	default:
		return nil, fmt.Errorf("instruction: cannot encode reply %T", r)
	}
	b, err := encode(body)
	if err != nil {
		return nil, fmt.Errorf("instruction: encode reply %s: %w", r.Type(), err)
	}
	return b, nil
}

func unsupportedReply(tag string) bool {
	switch tag {
	case "get_file_refs", "gc_regions", "enter_staging_regions", "sync_regions", "remap_manifest", "apply_staging_manifests":
		return true
	}
	return false
}

// DecodeReply reads an InstructionReply as GreptimeDB's serde does: the
// "type" tag anywhere in the object, the legacy singular tags (open_region,
// close_region, upgrade_region, downgrade_region), and an upgrade or
// downgrade reply of one flat region where a list of replies is due. Its
// errors wrap ErrInvalid or ErrUnsupported.
func DecodeReply(data []byte) (Reply, error) {
	obj, err := object("InstructionReply", data)
	if err != nil {
		return nil, invalid(err)
	}
	var tag string
	if err := decodeFields("InstructionReply", obj, required("type", &tag)); err != nil {
		return nil, invalid(err)
	}
	r, err := decodeReply(tag, obj)
	return r, invalid(err)
}

func decodeReply(tag string, obj map[string]json.RawMessage) (Reply, error) {
	switch tag {
	case "open_regions", "open_region":
		s, err := decodeSimpleReply(obj)
		return OpenRegionsReply(s), err
	case "close_regions", "close_region":
		s, err := decodeSimpleReply(obj)
		return CloseRegionsReply(s), err
	case "upgrade_regions", "upgrade_region":
		var one UpgradeRegionReply
		if decodeUpgradeRegionReply(obj, &one) == nil {
			return UpgradeRegionsReply{Replies: []UpgradeRegionReply{one}}, nil
		}
		var raw json.RawMessage
		if err := decodeFields("UpgradeRegionsReply", obj, required("replies", &raw)); err != nil {
			return nil, fmt.Errorf("upgrade_regions: neither one region's reply nor a list of replies: %w", err)
		}
		replies, err := decodeList("UpgradeRegionsReply.replies", raw, func(b []byte, u *UpgradeRegionReply) error {
			o, err := object("UpgradeRegionReply", b)
			if err != nil {
				return err
			}
			return decodeUpgradeRegionReply(o, u)
		})
		return UpgradeRegionsReply{Replies: replies}, err
	case "downgrade_regions", "downgrade_region":
		var one DowngradeRegionReply
		if decodeDowngradeRegionReply(obj, &one) == nil {
			return DowngradeRegionsReply{Replies: []DowngradeRegionReply{one}}, nil
		}
		var raw json.RawMessage
		if err := decodeFields("DowngradeRegionsReply", obj, required("replies", &raw)); err != nil {
			return nil, fmt.Errorf("downgrade_regions: neither one region's reply nor a list of replies: %w", err)
		}
		replies, err := decodeList("DowngradeRegionsReply.replies", raw, func(b []byte, d *DowngradeRegionReply) error {
			o, err := object("DowngradeRegionReply", b)
			if err != nil {
				return err
			}
			return decodeDowngradeRegionReply(o, d)
		})
		return DowngradeRegionsReply{Replies: replies}, err
	case "flush_regions":
		return decodeFlushRegionsReply(obj)
	}
	if unsupportedReply(tag) {
		return nil, fmt.Errorf("%w: InstructionReply %q", ErrUnsupported, tag)
	}
	return nil, fmt.Errorf("InstructionReply: unknown variant %q", tag)
}

func decodeSimpleReply(obj map[string]json.RawMessage) (SimpleReply, error) {
	var s SimpleReply
	err := decodeFields("SimpleReply", obj, required("result", &s.Result), option("error", &s.Error))
	return s, err
}

func decodeUpgradeRegionReply(obj map[string]json.RawMessage, u *UpgradeRegionReply) error {
	var out UpgradeRegionReply
	if err := decodeFields("UpgradeRegionReply", obj, defaulted("region_id", &out.RegionID),
		required("ready", &out.Ready), required("exists", &out.Exists), option("error", &out.Error)); err != nil {
		return err
	}
	*u = out
	return nil
}

func decodeDowngradeRegionReply(obj map[string]json.RawMessage, d *DowngradeRegionReply) error {
	var out DowngradeRegionReply
	if err := decodeFields("DowngradeRegionReply", obj, defaulted("region_id", &out.RegionID),
		option("last_entry_id", &out.LastEntryID), option("metadata_last_entry_id", &out.MetadataLastEntryID),
		required("exists", &out.Exists), option("error", &out.Error)); err != nil {
		return err
	}
	*d = out
	return nil
}

func decodeFlushRegionsReply(obj map[string]json.RawMessage) (FlushRegionsReply, error) {
	var out FlushRegionsReply
	var raw json.RawMessage
	if err := decodeFields("FlushRegionReply", obj, required("results", &raw), required("overall_success", &out.OverallSuccess)); err != nil {
		return out, err
	}
	results, err := decodeList("FlushRegionReply.results", raw, decodeFlushResult)
	out.Results = results
	return out, err
}

func decodeFlushResult(data []byte, f *FlushResult) error {
	var id RegionID
	var result json.RawMessage
	if err := pair("(RegionId, Result)", data, &id, &result); err != nil {
		return err
	}
	tag, body, err := variant("Result", result)
	if err != nil {
		return err
	}
	switch tag {
	case "Ok":
		if !isNull(body) {
			return fmt.Errorf("Result::Ok: want null, got %s", body)
		}
		*f = FlushResult{RegionID: id}
	case "Err":
		var msg string
		if err := decodeScalar("Result::Err", body, &msg); err != nil {
			return err
		}
		*f = FlushResult{RegionID: id, Err: &msg}
	default:
		return fmt.Errorf("flush result: unknown variant %q, expected `Ok` or `Err`", tag)
	}
	return nil
}
