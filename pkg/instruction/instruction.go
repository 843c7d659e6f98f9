package instruction

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Kind is an Instruction's variant name, as GreptimeDB tags it.
type Kind string

const (
	KindOpenRegions      Kind = "OpenRegions"
	KindCloseRegions     Kind = "CloseRegions"
	KindUpgradeRegions   Kind = "UpgradeRegions"
	KindDowngradeRegions Kind = "DowngradeRegions"
	KindInvalidateCaches Kind = "InvalidateCaches"
	KindFlushRegions     Kind = "FlushRegions"
)

// Kinds lists the variants this package models.
func Kinds() []Kind {
	return []Kind{KindOpenRegions, KindCloseRegions, KindUpgradeRegions, KindDowngradeRegions, KindInvalidateCaches, KindFlushRegions}
}

// Instruction is GreptimeDB's Instruction: one of OpenRegions,
// CloseRegions, UpgradeRegions, DowngradeRegions, InvalidateCaches and
// FlushRegions. Write it with Encode, read it with Decode.
type Instruction interface {
	Kind() Kind
	isInstruction()
}

// OpenRegions opens regions on a datanode; answered by an OpenRegionsReply.
type OpenRegions []OpenRegion

// CloseRegions closes regions on a datanode; answered by a CloseRegionsReply.
type CloseRegions []RegionIdent

// UpgradeRegions makes follower regions leaders; answered by an
// UpgradeRegionsReply.
type UpgradeRegions []UpgradeRegion

// DowngradeRegions makes leader regions downgrading leaders; answered by a
// DowngradeRegionsReply.
type DowngradeRegions []DowngradeRegion

// InvalidateCaches drops cached metadata on a node; never answered.
type InvalidateCaches []CacheIdent

// FlushRegions flushes regions; a Sync flush is answered by a
// FlushRegionsReply, an Async one is not.
type FlushRegions struct {
	RegionIDs     []RegionID
	Strategy      FlushStrategy      // "" is Sync, GreptimeDB's default
	ErrorStrategy FlushErrorStrategy // "" is FailFast, GreptimeDB's default
	Reason        RegionFlushReason  // "" is none
}

func (OpenRegions) Kind() Kind      { return KindOpenRegions }
func (CloseRegions) Kind() Kind     { return KindCloseRegions }
func (UpgradeRegions) Kind() Kind   { return KindUpgradeRegions }
func (DowngradeRegions) Kind() Kind { return KindDowngradeRegions }
func (InvalidateCaches) Kind() Kind { return KindInvalidateCaches }
func (FlushRegions) Kind() Kind     { return KindFlushRegions }

func (OpenRegions) isInstruction()      {}
func (CloseRegions) isInstruction()     {}
func (UpgradeRegions) isInstruction()   {}
func (DowngradeRegions) isInstruction() {}
func (InvalidateCaches) isInstruction() {}
func (FlushRegions) isInstruction()     {}

// ExpectsReply reports whether a GreptimeDB node answers i: InvalidateCaches
// and an Async flush are fire-and-forget.
func ExpectsReply(i Instruction) bool {
	switch v := i.(type) {
	case InvalidateCaches:
		return false
	case FlushRegions:
		return v.Strategy != FlushAsync
	default:
		return true
	}
}

func (f FlushRegions) MarshalJSON() ([]byte, error) {
	strategy, onError := f.Strategy, f.ErrorStrategy
	if strategy == "" {
		strategy = FlushSync
	}
	if onError == "" {
		onError = FlushFailFast
	}
	return encode(struct {
		RegionIDs     []RegionID         `json:"region_ids"`
		Strategy      FlushStrategy      `json:"strategy"`
		ErrorStrategy FlushErrorStrategy `json:"error_strategy"`
		Reason        RegionFlushReason  `json:"reason,omitempty"`
	}{nonNil(f.RegionIDs), strategy, onError, f.Reason})
}

func (f *FlushRegions) UnmarshalJSON(data []byte) error {
	out := FlushRegions{Strategy: FlushSync, ErrorStrategy: FlushFailFast}
	if err := decodeObject("FlushRegions", data,
		required("region_ids", &strictList[RegionID]{"region_ids", &out.RegionIDs}),
		defaulted("strategy", &out.Strategy), defaulted("error_strategy", &out.ErrorStrategy),
		option("reason", &out.Reason)); err != nil {
		return err
	}
	*f = out
	return nil
}

// Encode writes i as GreptimeDB's serde_json does: {"Variant": payload}.
func Encode(i Instruction) ([]byte, error) {
	var body any
	switch v := i.(type) {
	case OpenRegions:
		body = nonNil([]OpenRegion(v))
	case CloseRegions:
		body = nonNil([]RegionIdent(v))
	case UpgradeRegions:
		body = nonNil([]UpgradeRegion(v))
	case DowngradeRegions:
		body = nonNil([]DowngradeRegion(v))
	case InvalidateCaches:
		idents := make([]cacheIdentJSON, len(v))
		for n, c := range v {
			idents[n] = cacheIdentJSON{c}
		}
		body = idents
	case FlushRegions:
		body = v
	default:
		return nil, fmt.Errorf("instruction: cannot encode %T", i)
	}
	b, err := encodeVariant(string(i.Kind()), body)
	if err != nil {
		return nil, fmt.Errorf("instruction: encode %s: %w", i.Kind(), err)
	}
	return b, nil
}

// unsupportedInstructions are GreptimeDB v1.1.4's other variants.
func unsupportedInstruction(tag string) bool {
	switch tag {
	case "GetFileRefs", "GcRegions", "Suspend", "EnterStagingRegions", "SyncRegions", "RemapManifest", "ApplyStagingManifests":
		return true
	}
	return false
}

// Decode reads an Instruction as GreptimeDB's serde does, with the legacy
// forms it still accepts: the singular tags OpenRegion, CloseRegion,
// UpgradeRegion and DowngradeRegion, and one object where a list is due.
// Its errors wrap ErrInvalid or ErrUnsupported.
func Decode(data []byte) (Instruction, error) {
	var unit string
	if json.Unmarshal(data, &unit) == nil && !isNull(data) {
		if unsupportedInstruction(unit) {
			return nil, fmt.Errorf("%w: Instruction %q", ErrUnsupported, unit)
		}
		return nil, invalid(fmt.Errorf("Instruction: unknown variant %q", unit))
	}
	tag, body, err := variant("Instruction", data)
	if err != nil {
		return nil, invalid(err)
	}
	i, err := decodeVariant(tag, body)
	return i, invalid(err)
}

func decodeVariant(tag string, body json.RawMessage) (Instruction, error) {
	switch tag {
	case "OpenRegions", "OpenRegion":
		v, err := singleOrMultiple[OpenRegion](tag, body)
		return OpenRegions(v), err
	case "CloseRegions", "CloseRegion":
		v, err := singleOrMultiple[RegionIdent](tag, body)
		return CloseRegions(v), err
	case "UpgradeRegions", "UpgradeRegion":
		v, err := singleOrMultiple[UpgradeRegion](tag, body)
		return UpgradeRegions(v), err
	case "DowngradeRegions", "DowngradeRegion":
		v, err := singleOrMultiple[DowngradeRegion](tag, body)
		return DowngradeRegions(v), err
	case "InvalidateCaches":
		v, err := decodeList(tag, body, decodeCacheIdent)
		return InvalidateCaches(v), err
	case "FlushRegions":
		var f FlushRegions
		if err := json.Unmarshal(body, &f); err != nil {
			return nil, err
		}
		return f, nil
	}
	if unsupportedInstruction(tag) {
		return nil, fmt.Errorf("%w: Instruction %q", ErrUnsupported, tag)
	}
	return nil, fmt.Errorf("Instruction: unknown variant %q", tag)
}

// singleOrMultiple reads a list, or one element as a list of one
// (GreptimeDB's single_or_multiple_from, for payloads of older versions).
func singleOrMultiple[T any](typ string, body json.RawMessage) ([]T, error) {
	trimmed := bytes.TrimSpace(body)
	switch {
	case len(trimmed) > 0 && trimmed[0] == '{':
		var one T
		if err := json.Unmarshal(body, &one); err != nil {
			return nil, fmt.Errorf("%s: %w", typ, err)
		}
		return []T{one}, nil
	case len(trimmed) > 0 && trimmed[0] == '[':
		return decodeList(typ, body, unmarshal[T])
	}
	return nil, fmt.Errorf("%s: want an object or an array, got %s", typ, body)
}
