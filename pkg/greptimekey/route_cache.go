package greptimekey

import (
	"bytes"
	"sync"
)

// RouteCache decodes __table_route values and remembers, for each table,
// the last value it decoded. The leader reads a table's route on every
// datanode heartbeat and at every step of every region migration, while
// the route changes far less often, and decoding one of 100 regions costs
// milliseconds: a failover of 100 regions spent most of its CPU there. A
// read whose bytes equal the remembered ones gets the remembered value,
// which callers therefore share and must not modify. It remembers at most
// its limit of tables, forgetting an arbitrary one to make room. Safe for
// concurrent use; the zero value is not usable (NewRouteCache).
type RouteCache struct {
	limit int

	mu     sync.Mutex
	tables map[uint32]decodedRoute
}

type decodedRoute struct {
	raw   []byte
	value TableRouteValue
}

// DefaultRouteCacheTables is the limit of NewRouteCache(0).
const DefaultRouteCacheTables = 4096

// NewRouteCache returns a cache of up to limit tables (0: the default).
func NewRouteCache(limit int) *RouteCache {
	if limit <= 0 {
		limit = DefaultRouteCacheTables
	}
	return &RouteCache{limit: limit, tables: map[uint32]decodedRoute{}}
}

// Decode is Decode[TableRouteValue](raw) for table's route, from memory
// when raw is the value last decoded for table.
func (c *RouteCache) Decode(table uint32, raw []byte) (TableRouteValue, error) {
	c.mu.Lock()
	d, ok := c.tables[table]
	c.mu.Unlock()
	if ok && bytes.Equal(d.raw, raw) {
		return d.value, nil
	}
	v, err := Decode[TableRouteValue](raw)
	if err != nil {
		return TableRouteValue{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.tables[table]; !ok && len(c.tables) >= c.limit {
		for k := range c.tables {
			delete(c.tables, k)
			break
		}
	}
	c.tables[table] = decodedRoute{raw: bytes.Clone(raw), value: v}
	return v, nil
}

// Forget drops what is remembered of table (a dropped table).
func (c *RouteCache) Forget(table uint32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.tables, table)
}
