package migration

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/heartbeat"
	"github.com/pgmetasrv/metasrv/pkg/instruction"
	"github.com/pgmetasrv/metasrv/pkg/procedure"
	"github.com/pgmetasrv/metasrv/pkg/statuscode"
)

// optimisticRetries and retryInterval are GreptimeDB's DowngradeLeaderRegion
// and UpgradeCandidateRegion defaults: attempts within one step before it
// gives up on the fast path.
const (
	optimisticRetries = 3
	retryInterval     = 500 * time.Millisecond
)

// peerDebug is a peer as Rust's Debug of the protobuf Peer shows it.
func peerDebug(p greptimekey.Peer) string {
	return fmt.Sprintf("Peer { id: %d, addr: %q }", p.ID, p.Addr)
}

// start is RegionMigrationStart: done at once when the candidate already
// leads the region, aborted when the source does not, else on.
func (p *migration) start(ctx context.Context, pc *procedure.Context) (string, error) {
	snap, err := readRoute(ctx, pc.Store, p.m.routes.decoded, p.data.RegionID)
	if err != nil {
		return "", err
	}
	rr := snap.route()
	switch {
	case rr.LeaderPeer == nil:
		return "", unexpected("Leader peer is not found in TableRoute(%s)", regionName(p.data.RegionID))
	case rr.LeaderPeer.ID == p.data.To.ID:
		pc.Logger.Info("region already migrated", "region_id", regionName(p.data.RegionID), "to", p.data.To.ID)
		return "", nil
	case rr.LeaderPeer.ID != p.data.From.ID:
		return "", fmt.Errorf("%w: %w", ErrLeaderChanged,
			abort("Invalid region leader peer: %s, expected: %s", peerDebug(*rr.LeaderPeer), peerDebug(p.data.From)))
	}
	return stepOpenCandidate, nil
}

// openCandidate is OpenCandidateRegion: the candidate opens the region as
// a follower, without replaying its WAL, with the storage path, options
// and WAL options of the old leader's __dn_table value.
func (p *migration) openCandidate(ctx context.Context, pc *procedure.Context) error {
	dn, err := datanodeTable(ctx, pc.Store, p.data.From.ID, p.tableID())
	if err != nil {
		return err
	}
	reason := instruction.OpenForRegionMigration
	if p.data.Reason == ReasonFailover {
		reason = instruction.OpenForRegionFailover
	}
	instr := instruction.OpenRegions{{
		RegionIdent: instruction.RegionIdent{DatanodeID: p.data.To.ID, TableID: p.tableID(),
			RegionNumber: greptimekey.RegionNumber(p.data.RegionID), Engine: dn.RegionInfo.Engine},
		RegionStoragePath: dn.RegionInfo.RegionStoragePath,
		RegionOptions:     dn.RegionInfo.RegionOptions,
		RegionWalOptions:  dn.RegionInfo.RegionWALOptions,
		SkipWalReplay:     true,
		Reason:            reason,
		Requirements:      instruction.RegionRequirements{ObjectStorage: true},
	}}
	remaining, ok := p.remaining()
	if !ok {
		return exceededDeadline("Open candidate region")
	}
	reply, err := p.send(ctx, pc.Term, p.data.To.ID, subjectOpen, instr, max(remaining/2, p.m.regionLease))
	switch {
	case unreachable(err) && !stopping(ctx, err):
		// Right after a leader change the datanodes are still
		// reconnecting to this leader: nothing has changed yet, so wait
		// for the candidate as the procedure's retries allow.
		return retryLater("the candidate datanode %d is not connected to this leader: %v", p.data.To.ID, err)
	case errors.Is(err, heartbeat.ErrMailboxTimeout):
		return retryLater("Mailbox received timeout for open candidate region %s on datanode %d", regionName(p.data.RegionID), p.data.To.ID)
	case err != nil:
		return err
	}
	open, ok := reply.(instruction.OpenRegionsReply)
	if !ok {
		return unexpectedReplyOf(reply, "expect open region reply")
	}
	if !open.Result {
		return retryLater("Region %s is not opened by datanode %d, error: %s", regionName(p.data.RegionID), p.data.To.ID, errorText(open.Error))
	}
	return nil
}

// flushLeader is PreFlushRegion: the old leader flushes, so the region is
// unwritable for less time later. A leader that cannot be reached, or whose
// flush fails, is no reason to stop (GreptimeDB's ErrorStrategy::Ignore); a
// flush that does not answer in time is.
func (p *migration) flushLeader(ctx context.Context, pc *procedure.Context, log *slog.Logger) error {
	remaining, ok := p.remaining()
	if !ok {
		return exceededDeadline("Flush leader region")
	}
	instr := instruction.FlushRegions{RegionIDs: []instruction.RegionID{instruction.RegionID(p.data.RegionID)},
		Strategy: instruction.FlushSync, ErrorStrategy: instruction.FlushTryAll, Reason: instruction.FlushForRegionMigration}
	reply, err := p.send(ctx, pc.Term, p.data.From.ID, subjectFlush, instr, remaining)
	switch {
	case unreachable(err):
		log.Warn("flush skipped: the leader datanode is unreachable", "err", err)
		return nil
	case errors.Is(err, heartbeat.ErrMailboxTimeout):
		return exceededDeadline("Flush regions")
	case err != nil:
		return err
	}
	flush, ok := reply.(instruction.FlushRegionsReply)
	if !ok {
		return unexpectedReplyOf(reply, "expect flush region reply")
	}
	if len(flush.Results) != 1 {
		return unexpectedReplyOf(reply, fmt.Sprintf("expect 1 region flush result, but got %d", len(flush.Results)))
	}
	if !flush.OverallSuccess {
		log.Warn("flush of the leader region failed; going on", "err", errorText(flush.Results[0].Err))
	}
	return nil
}

// downgradeMetadata is UpdateMetadata::Downgrade: the route's leader state
// becomes Downgrading, so every lease the old leader is granted from now on
// is a downgrading (unwritable) one.
func (p *migration) downgradeMetadata(ctx context.Context, pc *procedure.Context, log *slog.Logger) error {
	done := func(rr greptimekey.RegionRoute) (bool, error) {
		if rr.LeaderPeer == nil || rr.LeaderPeer.ID != p.data.From.ID {
			return false, abort("the leader of region %s changed during its migration from datanode %d", regionName(p.data.RegionID), p.data.From.ID)
		}
		return rr.LeaderState == greptimekey.LeaderStateDowngrading, nil
	}
	changed, err := p.m.updateRoute(ctx, pc, p.data.RegionID, done, func(s *routeSnapshot) (routeChange, error) {
		routes := cloneRoutes(s.value.Physical.RegionRoutes)
		routes[s.index].SetLeaderState(greptimekey.LeaderStateDowngrading, p.m.clock.Now().UnixMilli())
		return routeChange{routes: routes}, nil
	})
	if err == nil {
		log.Info("leader region marked downgrading in the table route", "written", changed)
	}
	return err
}

// downgradeLeader is DowngradeLeaderRegion. The fast path: the old leader
// answers DowngradeRegions, with its last entry id. The slow path (it is
// unreachable, or keeps failing): wait until every region lease it may
// have been granted as leader has run out, which the route's Downgrading
// state stops it from renewing. Either way no writable leader is left
// behind it; only a spent task timeout rolls the migration back.
func (p *migration) downgradeLeader(ctx context.Context, pc *procedure.Context, ts *termState, log *slog.Logger) error {
	if p.leaseExpires.IsZero() {
		// The route is Downgrading since before this step began: a leader
		// lease granted earlier ends within one lease of now.
		p.leaseExpires = p.m.clock.Now().Add(p.m.regionLease)
	}
	for attempt := 1; ; attempt++ {
		remaining, ok := p.remaining()
		if !ok {
			return exceededDeadline("Downgrade region")
		}
		began := p.m.clock.Now()
		err := p.downgradeOnce(ctx, pc, remaining, log)
		p.opsElapsed += p.m.clock.Now().Sub(began)
		switch {
		case err == nil:
			p.data.LeaderDowngraded = true
			return nil
		case stopping(ctx, err):
			return err
		case errors.Is(err, heartbeat.ErrPusherNotFound):
			p.shortenLeaseWait(ctx, ts, log)
		case procedure.IsRetryable(err) && attempt < optimisticRetries:
			log.Warn("downgrade of the leader region failed, retrying", "attempt", attempt, "err", err)
			if err := sleep(ctx, p.m.clock, retryInterval); err != nil {
				return err
			}
			continue
		}
		wait := p.leaseExpires.Sub(p.m.clock.Now())
		log.Warn("leader region not downgraded; waiting out its region lease", "err", err, "wait", max(wait, 0).String())
		return sleep(ctx, p.m.clock, wait)
	}
}

func (p *migration) downgradeOnce(ctx context.Context, pc *procedure.Context, remaining time.Duration, log *slog.Logger) error {
	instr := instruction.DowngradeRegions{{RegionID: instruction.RegionID(p.data.RegionID), FlushTimeout: &remaining}}
	reply, err := p.send(ctx, pc.Term, p.data.From.ID, subjectDowngrade, instr, remaining)
	switch {
	case errors.Is(err, heartbeat.ErrMailboxTimeout):
		return retryLater("Mailbox received timeout for downgrade leader region %s on datanode %d", regionName(p.data.RegionID), p.data.From.ID)
	case err != nil:
		return err
	}
	down, ok := reply.(instruction.DowngradeRegionsReply)
	if !ok {
		return unexpectedReplyOf(reply, "expect downgrade region reply")
	}
	for _, r := range down.Replies {
		if r.Error != nil {
			return retryLater("Failed to downgrade the region %s on datanode %d, error: %s", regionName(p.data.RegionID), p.data.From.ID, *r.Error)
		}
		if !r.Exists {
			log.Warn("the leader datanode does not have the region it was asked to downgrade")
		}
		p.data.LastEntryID, p.data.MetadataLastEntryID = r.LastEntryID, r.MetadataLastEntryID
	}
	return nil
}

// shortenLeaseWait: a leader that is not connected has not heartbeated
// since its lease's timestamp, so no lease it holds outlives that moment by
// more than one region lease (GreptimeDB's
// update_leader_region_lease_deadline). The wait only ever gets shorter.
func (p *migration) shortenLeaseWait(ctx context.Context, ts *termState, log *slog.Logger) {
	lease, err := datanodeLease(ctx, ts.memory, p.data.From.ID)
	if err != nil || lease == nil {
		return
	}
	last := time.UnixMilli(lease.TimestampMillis)
	if end := last.Add(p.m.regionLease); end.Before(p.leaseExpires) {
		p.leaseExpires = end
		log.Info("the leader datanode's last heartbeat bounds its region lease", "last_heartbeat", last, "lease_ends", end)
	}
}

// upgradeCandidate is UpgradeCandidateRegion: the candidate replays the WAL
// up to the old leader's last entry and becomes writable. A region still
// replaying is asked again while the task's timeout lasts; other transient
// failures up to GreptimeDB's optimistic retries. Giving up rolls back.
func (p *migration) upgradeCandidate(ctx context.Context, pc *procedure.Context, log *slog.Logger) error {
	for attempt := 1; ; attempt++ {
		remaining, ok := p.remaining()
		if !ok {
			return exceededDeadline("Upgrade region")
		}
		began := p.m.clock.Now()
		ready, err := p.upgradeOnce(ctx, pc, remaining)
		p.opsElapsed += p.m.clock.Now().Sub(began)
		switch {
		case err == nil && ready:
			return nil
		case err != nil && stopping(ctx, err):
			return err
		case unreachable(err):
			// A candidate reconnecting after a leader change: waited for
			// within the timeout (the wait counts against it), not counted
			// as a failed attempt.
			attempt--
			p.opsElapsed += retryInterval
		case err != nil && !procedure.IsRetryable(err):
			return err
		case err != nil && attempt >= optimisticRetries:
			return giveUp(fmt.Errorf("upgrade of the candidate region failed %d times: %w", attempt, err))
		}
		log.Warn("candidate region not upgraded yet, retrying", "attempt", attempt, "ready", ready, "err", err)
		if err := sleep(ctx, p.m.clock, retryInterval); err != nil {
			return err
		}
	}
}

// upgradeOnce sends one UpgradeRegions; ready is false for a region that
// is still replaying its WAL.
func (p *migration) upgradeOnce(ctx context.Context, pc *procedure.Context, remaining time.Duration) (bool, error) {
	instr := instruction.UpgradeRegions{{
		RegionID:            instruction.RegionID(p.data.RegionID),
		LastEntryID:         p.data.LastEntryID,
		MetadataLastEntryID: p.data.MetadataLastEntryID,
		ReplayTimeout:       remaining,
		LocationID:          new(p.data.From.ID),
	}}
	reply, err := p.send(ctx, pc.Term, p.data.To.ID, subjectUpgrade, instr, remaining)
	switch {
	case errors.Is(err, heartbeat.ErrMailboxTimeout):
		return false, retryLater("Mailbox received timeout for upgrade candidate regions %s on datanode %d", regionName(p.data.RegionID), p.data.To.ID)
	case err != nil:
		return false, err
	}
	up, ok := reply.(instruction.UpgradeRegionsReply)
	if !ok {
		return false, unexpectedReplyOf(reply, "Unexpected reply of the upgrade region instruction")
	}
	for _, r := range up.Replies {
		switch {
		case r.Error != nil:
			return false, retryLater("Failed to upgrade the region %s on datanode %d, error: %s", regionName(p.data.RegionID), p.data.To.ID, *r.Error)
		case !r.Exists:
			return false, unexpected("Candidate region %s doesn't exist on datanode %d", regionName(p.data.RegionID), p.data.To.ID)
		case !r.Ready:
			return false, nil
		}
	}
	return true, nil
}

// upgradeMetadata is UpdateMetadata::Upgrade: one transaction makes the
// candidate the route's leader (leader state cleared, the old leader
// dropped, the candidate no longer a follower) and moves the region
// between the two datanodes' __dn_table values; then the table's caches are
// invalidated (a failure there is only logged, as GreptimeDB does).
func (p *migration) upgradeMetadata(ctx context.Context, pc *procedure.Context, log *slog.Logger) error {
	done := func(rr greptimekey.RegionRoute) (bool, error) {
		switch {
		case rr.LeaderPeer != nil && rr.LeaderPeer.ID == p.data.To.ID && rr.LeaderState == greptimekey.LeaderStateDowngrading:
			return false, unexpected("Unexpected intermediate state is found during the metadata upgrade check for region %s", regionName(p.data.RegionID))
		case rr.LeaderPeer != nil && rr.LeaderPeer.ID == p.data.To.ID:
			return true, nil
		case rr.LeaderPeer == nil || rr.LeaderPeer.ID != p.data.From.ID:
			return false, unexpected("Unexpected region leader: %s during the candidate-to-leader upgrade; expected: %s", optionalPeer(rr.LeaderPeer), peerDebug(p.data.From))
		}
		return false, nil
	}
	changed, err := p.m.updateRoute(ctx, pc, p.data.RegionID, done, func(s *routeSnapshot) (routeChange, error) {
		dn, err := datanodeTable(ctx, pc.Store, p.data.From.ID, s.tableID)
		if err != nil {
			return routeChange{}, err
		}
		old := s.value.Physical.RegionRoutes
		routes := cloneRoutes(old)
		r := &routes[s.index]
		r.SetLeaderState(greptimekey.LeaderStateNone, 0)
		r.LeaderPeer = new(p.data.To)
		r.FollowerPeers = deletePeer(r.FollowerPeers, p.data.To.ID)
		ops, err := datanodeTableOps(s.tableID, old, routes, dn.RegionInfo)
		return routeChange{routes: routes, ops: ops}, err
	})
	if err != nil {
		return err
	}
	log.Info("candidate region made leader in the table route", "written", changed)
	p.handOverDetectors(pc, log)
	p.invalidate(ctx, pc, log)
	return nil
}

// closeDowngraded is CloseDowngradedRegion: the old leader closes its copy.
// A failure is only logged (GreptimeDB's too): the datanode's next
// heartbeat finds the region closeable once the migration has released it.
func (p *migration) closeDowngraded(ctx context.Context, pc *procedure.Context, log *slog.Logger) {
	err := p.closeRegion(ctx, pc, p.data.From.ID, subjectClose)
	if err != nil && !stopping(ctx, err) {
		log.Warn("closing the downgraded leader region failed; its datanode closes it when told it is closeable", "err", err)
	}
}

func (p *migration) closeRegion(ctx context.Context, pc *procedure.Context, datanode uint64, subject string) error {
	instr := instruction.CloseRegions{{DatanodeID: datanode, TableID: p.tableID(), RegionNumber: greptimekey.RegionNumber(p.data.RegionID)}}
	reply, err := p.send(ctx, pc.Term, datanode, subject, instr, p.m.regionLease)
	if err != nil {
		return err
	}
	c, ok := reply.(instruction.CloseRegionsReply)
	switch {
	case !ok:
		return unexpectedReplyOf(reply, "expect close region reply")
	case !c.Result:
		return unexpected("Failed to close region %s on datanode %d, error: %s", regionName(p.data.RegionID), datanode, errorText(c.Error))
	}
	return nil
}

// invalidate broadcasts that the table's route changed.
func (p *migration) invalidate(ctx context.Context, pc *procedure.Context, log *slog.Logger) {
	err := p.m.opts.Mailbox.InvalidateCaches(ctx, pc.Term, []instruction.CacheIdent{instruction.TableID(p.tableID())})
	if err != nil {
		log.Warn("invalidating the table's caches failed", "err", err)
	}
}

func deletePeer(peers []greptimekey.Peer, id uint64) []greptimekey.Peer {
	out := peers[:0]
	for _, f := range peers {
		if f.ID != id {
			out = append(out, f)
		}
	}
	return out
}

func errorText(s *string) string {
	if s == nil {
		return "none"
	}
	return *s
}

// unexpectedReplyOf is UnexpectedInstructionReply for a reply of the wrong
// kind.
func unexpectedReplyOf(r instruction.Reply, reason string) error {
	b, _ := instruction.EncodeReply(r) // a decoded reply always encodes
	return statuscode.Errorf(statuscode.Unexpected, "Received unexpected instruction reply, mailbox message: %s, reason: %s", b, reason)
}

// optionalPeer is Rust's Debug of an Option<Peer>.
func optionalPeer(p *greptimekey.Peer) string {
	if p == nil {
		return "None"
	}
	return "Some(" + peerDebug(*p) + ")"
}

// giveUp turns a retryable error into one that rolls the migration back at
// once, keeping its text and code: the step retried it enough itself.
func giveUp(err error) error { return &finalError{msg: err.Error(), code: procedure.ErrorCode(err)} }

type finalError struct {
	msg  string
	code uint32
}

func (e *finalError) Error() string { return e.msg }
func (e *finalError) Code() uint32  { return e.code }
