package greptimekey

import (
	"encoding/json"
	"errors"
	"fmt"
)

// TableRouteValue is the value of a __table_route key (key/table_route.rs
// TableRouteValue), internally tagged by "type":
//
//	{"type":"physical","region_routes":[...],"max_region_number":1,"version":0}
//	{"type":"logical","physical_table_id":1024}
//
// Exactly one of Physical and Logical is set. A value without a valid
// "type" is read as a bare physical route, as GreptimeDB reads the routes
// written before the tag existed.
type TableRouteValue struct {
	Physical *PhysicalTableRoute
	Logical  *LogicalTableRoute
}

// PhysicalTableRoute is a table that owns regions. On reading,
// region_routes and version are required; a missing max_region_number is
// the highest region number of the routes (0 for none).
type PhysicalTableRoute struct {
	RegionRoutes []RegionRoute
	// MaxRegionNumber is the highest region number the table ever had; it
	// never decreases, so that a new region never reuses a dropped one's id.
	MaxRegionNumber uint32
	// Version counts the route's changes: 0 when created, +1 on each update.
	Version uint64
}

// LogicalTableRoute is a metric-engine logical table, whose data lives in
// the regions of its physical table.
type LogicalTableRoute struct {
	PhysicalTableID uint32
}

// NewPhysicalTableRoute is the route of a new physical table
// (PhysicalTableRouteValue::new): version 0, MaxRegionNumber from routes.
func NewPhysicalTableRoute(routes []RegionRoute) TableRouteValue {
	return TableRouteValue{Physical: &PhysicalTableRoute{
		RegionRoutes:    routes,
		MaxRegionNumber: maxRegionNumber(routes),
	}}
}

// NewLogicalTableRoute is the route of a logical table on physicalTableID.
func NewLogicalTableRoute(physicalTableID uint32) TableRouteValue {
	return TableRouteValue{Logical: &LogicalTableRoute{PhysicalTableID: physicalTableID}}
}

// Next is the route after replacing its region routes
// (TableRouteValue::update): the version one higher, MaxRegionNumber raised
// to the new routes' highest region number if that is higher.
func (r PhysicalTableRoute) Next(routes []RegionRoute) PhysicalTableRoute {
	return PhysicalTableRoute{
		RegionRoutes:    routes,
		MaxRegionNumber: max(r.MaxRegionNumber, maxRegionNumber(routes)),
		Version:         r.Version + 1,
	}
}

func maxRegionNumber(routes []RegionRoute) uint32 {
	var n uint32
	for _, r := range routes {
		n = max(n, RegionNumber(r.Region.ID))
	}
	return n
}

// Encode returns the value as GreptimeDB writes it.
func (v TableRouteValue) Encode() ([]byte, error) { return v.MarshalJSON() }

func (v TableRouteValue) MarshalJSON() ([]byte, error) {
	switch {
	case v.Physical != nil && v.Logical == nil:
		return encode(struct {
			Type            string        `json:"type"`
			RegionRoutes    []RegionRoute `json:"region_routes"`
			MaxRegionNumber uint32        `json:"max_region_number"`
			Version         uint64        `json:"version"`
		}{"physical", nonNil(v.Physical.RegionRoutes), v.Physical.MaxRegionNumber, v.Physical.Version})
	case v.Logical != nil && v.Physical == nil:
		return encode(struct {
			Type            string `json:"type"`
			PhysicalTableID uint32 `json:"physical_table_id"`
		}{"logical", v.Logical.PhysicalTableID})
	default:
		return nil, fmt.Errorf("%w: TableRouteValue: want exactly one of Physical and Logical", ErrInvalidValue)
	}
}

func (v *TableRouteValue) UnmarshalJSON(data []byte) error {
	const typ = "TableRouteValue"
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil {
		return &fieldError{typ: typ, err: err}
	}
	var tag string
	if raw, ok := obj["type"]; ok {
		_ = json.Unmarshal(raw, &tag) // a tag that is not a string is no tag
	}
	if tag == "logical" {
		var l LogicalTableRoute
		if err := decodeObject(typ, data, required("physical_table_id", &l.PhysicalTableID)); err == nil {
			*v = TableRouteValue{Logical: &l}
			return nil
		}
	}
	// A physical tag, a logical value that does not decode, an unknown or
	// missing tag: GreptimeDB retries every such value as a bare physical
	// route, which ignores "type".
	p, err := decodePhysicalRoute(data)
	if err != nil {
		return err
	}
	*v = TableRouteValue{Physical: &p}
	return nil
}

func decodePhysicalRoute(data []byte) (PhysicalTableRoute, error) {
	var p PhysicalTableRoute
	var maxNumber *uint32
	if err := decodeObject("PhysicalTableRouteValue", data,
		required("region_routes", listOf(&p.RegionRoutes)),
		option("max_region_number", &maxNumber),
		required("version", &p.Version),
	); err != nil {
		return PhysicalTableRoute{}, err
	}
	if maxNumber != nil {
		p.MaxRegionNumber = *maxNumber
	} else {
		p.MaxRegionNumber = maxRegionNumber(p.RegionRoutes)
	}
	return p, nil
}

// ErrLogicalTableRoute is returned for a logical table where only a physical
// table has region routes (GreptimeDB's UnexpectedLogicalRouteTable).
var ErrLogicalTableRoute = errors.New("greptimekey: table route is logical")

// RegionRoutes returns the routes of a physical table.
func (v TableRouteValue) RegionRoutes() ([]RegionRoute, error) {
	if v.Physical == nil {
		return nil, ErrLogicalTableRoute
	}
	return v.Physical.RegionRoutes, nil
}
