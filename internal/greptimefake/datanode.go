package greptimefake

import (
	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
)

// What tests watch of a node. The channels are buffered
// (Config.EventBuffer); when a reader falls behind, the oldest entries are
// dropped, never blocking the node. Each entry is queued once what it
// records has taken effect.

// PeerAddr is the address the node reports in its heartbeats' peer: a
// region server's bound address once started, Config.Addr otherwise.
func (n *Node) PeerAddr() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.peer.GetAddr()
}

// RegionEvents records every region a Region/Handle call named, once the
// call was answered; nil without Config.RegionServer.
func (n *Node) RegionEvents() <-chan RegionEvent { return n.regionEvents }

// Regions is a snapshot of the regions a region server holds and their
// roles, lease countdowns applied; nil without Config.RegionServer.
func (n *Node) Regions() map[uint64]RegionRole {
	if n.regions == nil {
		return nil
	}
	return n.regions.snapshot()
}

// SetLastEntryID sets the last WAL entry id a region server reports for a
// region (in a downgrade's reply and as its flushed entry id), now and when
// the region is opened again. Without Config.RegionServer it does nothing.
func (n *Node) SetLastEntryID(regionID, entryID uint64) {
	if n.regions != nil {
		n.regions.setLastEntryID(regionID, entryID)
	}
}

// Leases records every region lease a datanode received, once applied.
func (n *Node) Leases() <-chan *metapb.RegionLease { return n.leases }

// LastLease is the last region lease a datanode received (nil before any).
func (n *Node) LastLease() *metapb.RegionLease { return n.lastLease.Load() }

// Instructions records every mailbox message the node received, once dealt
// with (executed, answered, or ignored).
func (n *Node) Instructions() <-chan InstructionEvent { return n.instructions }

// Invalidations records every InvalidateCaches the node received.
func (n *Node) Invalidations() <-chan Invalidation { return n.invalidations }
