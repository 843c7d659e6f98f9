package heartbeat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/kv"
)

// handler is one link of the chain. handle reports stop to end the chain for
// this request; an error is logged and the chain goes on.
type handler struct {
	name   string
	roles  []metapb.Role // nil: every role
	handle func(ctx context.Context, hc *handlerCtx) (stop bool, err error)
}

func (h handler) accepts(r metapb.Role) bool { return h.roles == nil || slices.Contains(h.roles, r) }

// handlerCtx is one request going through the chain.
type handlerCtx struct {
	sess *Session
	req  *metapb.HeartbeatRequest
	now  time.Time
	resp *metapb.HeartbeatResponse
	// stat is the datanode's stat of this request, once extracted.
	stat *greptimekey.Stat
}

// defaultHandlers is GreptimeDB's default chain (HeartbeatHandlerGroupBuilder's
// add_default_handlers in meta-srv handler.rs), as far as metasrv goes, in
// its order.
func defaultHandlers() []handler {
	datanodes := []metapb.Role{metapb.Role_DATANODE}
	frontends := []metapb.Role{metapb.Role_FRONTEND}
	flownodes := []metapb.Role{metapb.Role_FLOWNODE}
	return []handler{
		{name: "response_header", handle: responseHeader},
		{name: "datanode_keep_lease", roles: datanodes, handle: keepLease},
		{name: "flownode_keep_lease", roles: flownodes, handle: keepLease},
		{name: "check_leader", handle: checkLeader},
		{name: "on_leader_start", handle: onLeaderStart},
		{name: "extract_stat", roles: datanodes, handle: extractStat},
		{name: "collect_datanode_cluster_info", roles: datanodes, handle: collectClusterInfo},
		{name: "collect_frontend_cluster_info", roles: frontends, handle: collectClusterInfo},
		{name: "collect_flownode_cluster_info", roles: flownodes, handle: collectClusterInfo},
		{name: "mailbox", handle: mailboxReply},
		{name: "region_lease", roles: datanodes, handle: regionLease},
		{name: "region_failure", roles: datanodes, handle: regionFailure},
		{name: "collect_stats", roles: datanodes, handle: collectStats},
		{name: "remap_flow_peer", roles: flownodes, handle: remapFlowPeer},
	}
}

func responseHeader(_ context.Context, hc *handlerCtx) (bool, error) {
	hc.resp.Header = OKHeader()
	return false, nil
}

// keepLease records that the node is alive: its lease entry in the
// in-memory KV, stamped with this node's clock.
func keepLease(ctx context.Context, hc *handlerCtx) (bool, error) {
	peer := hc.req.GetPeer()
	if hc.req.GetHeader() == nil || peer == nil {
		return false, nil
	}
	key := greptimekey.DatanodeLeaseKey(peer.GetId())
	workloads := datanodeWorkloads(hc.req)
	if hc.sess.id.Role == metapb.Role_FLOWNODE {
		key = greptimekey.FlownodeLeaseKey(peer.GetId())
		workloads = greptimekey.NodeWorkloads{Role: greptimekey.RoleFlownode, Types: flownodeTypes(hc.req)}
	}
	value, err := greptimekey.LeaseValue{TimestampMillis: hc.now.UnixMilli(), NodeAddr: peer.GetAddr(), Workloads: workloads}.Encode()
	if err != nil {
		return false, fmt.Errorf("encode lease of %s: %w", hc.sess.id, err)
	}
	if _, err := hc.sess.memory().Put(ctx, kv.PutRequest{Key: key, Value: value}); err != nil {
		return false, fmt.Errorf("keep lease of %s: %w", hc.sess.id, err)
	}
	return false, nil
}

// datanodeWorkloads keeps the workload types GreptimeDB knows (hybrid, 0)
// and defaults to hybrid, as its get_datanode_workloads does.
func datanodeWorkloads(req *metapb.HeartbeatRequest) greptimekey.NodeWorkloads {
	types := []int32{0}
	if d := req.GetDatanode(); d != nil {
		types = slices.DeleteFunc(slices.Clone(d.GetTypes()), func(t int32) bool { return t != 0 })
	}
	return greptimekey.NodeWorkloads{Role: greptimekey.RoleDatanode, Types: types}
}

func flownodeTypes(req *metapb.HeartbeatRequest) []int32 {
	if f := req.GetFlownode(); f != nil {
		return slices.Clone(f.GetTypes())
	}
	return []int32{}
}

func frontendTypes(req *metapb.HeartbeatRequest) []int32 {
	if f := req.GetFrontend(); f != nil {
		return slices.Clone(f.GetTypes())
	}
	return []int32{}
}

// checkLeader ends the chain with NotLeader unless this node trusts, right
// now, that it leads the term the session was registered in.
func checkLeader(_ context.Context, hc *handlerCtx) (bool, error) {
	if hc.sess.leads() {
		return false, nil
	}
	hc.resp.Header = NotLeaderHeader()
	return true, nil
}

// onLeaderStart empties the in-memory KV on the first heartbeat of a term,
// as GreptimeDB's infancy reset does: whatever a previous term left there is
// not this term's.
func onLeaderStart(_ context.Context, hc *handlerCtx) (bool, error) {
	ts := hc.sess.term
	if ts != nil && ts.infancy.CompareAndSwap(true, false) {
		if r, ok := ts.memory.(kv.ResettableBackend); ok {
			r.Reset()
		}
	}
	return false, nil
}

// extractStat builds the datanode's stat from a regular heartbeat (not a
// handshake, not a mailbox reply).
func extractStat(_ context.Context, hc *handlerCtx) (bool, error) {
	req := hc.req
	if req.GetMailboxMessage() != nil || req.GetHeader() == nil || req.GetPeer() == nil {
		return false, nil
	}
	st := &greptimekey.Stat{
		TimestampMillis:   hc.now.UnixMilli(),
		ID:                req.GetPeer().GetId(),
		Addr:              req.GetPeer().GetAddr(),
		RegionNum:         uint64(len(req.GetRegionStats())),
		RegionStats:       make([]greptimekey.RegionStat, 0, len(req.GetRegionStats())),
		TopicStats:        make([]greptimekey.TopicStat, 0, len(req.GetTopicStats())),
		NodeEpoch:         req.GetNodeEpoch(),
		DatanodeWorkloads: datanodeWorkloads(req).Types,
	}
	for _, r := range req.GetRegionStats() {
		st.Rcus += r.GetRcus()
		st.Wcus += r.GetWcus()
		rs := regionStatistic(r)
		st.RegionStats = append(st.RegionStats, greptimekey.RegionStat{
			ID: r.GetRegionId(), Rcus: r.GetRcus(), Wcus: r.GetWcus(), ApproximateBytes: uint64(max(r.GetApproximateBytes(), 0)),
			Engine: r.GetEngine(), Role: regionRole(r.GetRole()),
			NumRows: rs.NumRows, MemtableSize: rs.MemtableSize, ManifestSize: rs.ManifestSize, SstSize: rs.SstSize,
			SstNum: rs.SstNum, IndexSize: rs.IndexSize, RegionManifest: rs.Manifest, WrittenBytes: rs.WrittenBytes,
			DataTopicLatestEntryID: rs.DataTopicLatestEntryID, MetadataTopicLatestEntryID: rs.MetadataTopicLatestEntryID,
		})
	}
	for _, t := range req.GetTopicStats() {
		st.TopicStats = append(st.TopicStats, greptimekey.TopicStat{
			Topic: t.GetTopicName(), LatestEntryID: t.GetLatestEntryId(), RecordSize: t.GetRecordSize(), RecordNum: t.GetRecordNum(),
		})
	}
	hc.stat = st
	return false, nil
}

// regionStatisticKey is the region stat extension where datanodes put the
// figures the protobuf message has no field for.
const regionStatisticKey = "__region_statistic"

// emptyMitoManifest is greptimekey.MitoManifest(0, 0, 0), GreptimeDB's
// default RegionManifestInfo, spelled out: it is needed for every region of
// every heartbeat without the extension.
const emptyMitoManifest = `{"Mito":{"manifest_version":0,"flushed_entry_id":0,"file_removed_cnt":0}}`

// regionStatisticJSON is the extension's JSON, as GreptimeDB's RegionStatistic.
type regionStatisticJSON struct {
	NumRows                    uint64          `json:"num_rows"`
	MemtableSize               uint64          `json:"memtable_size"`
	ManifestSize               uint64          `json:"manifest_size"`
	SstSize                    uint64          `json:"sst_size"`
	SstNum                     uint64          `json:"sst_num"`
	IndexSize                  uint64          `json:"index_size"`
	Manifest                   json.RawMessage `json:"manifest"`
	WrittenBytes               uint64          `json:"written_bytes"`
	DataTopicLatestEntryID     uint64          `json:"data_topic_latest_entry_id"`
	MetadataTopicLatestEntryID uint64          `json:"metadata_topic_latest_entry_id"`
}

// regionStatistic reads the extension; absent or unreadable, it is all
// zeros with an empty mito manifest, GreptimeDB's default.
func regionStatistic(r *metapb.RegionStat) regionStatisticJSON {
	var rs regionStatisticJSON
	if raw, ok := r.GetExtensions()[regionStatisticKey]; !ok || json.Unmarshal(raw, &rs) != nil {
		rs = regionStatisticJSON{}
	}
	if len(rs.Manifest) == 0 || string(rs.Manifest) == "null" {
		rs.Manifest = json.RawMessage(emptyMitoManifest)
	}
	return rs
}

func regionRole(r metapb.RegionRole) greptimekey.RegionRole {
	switch r {
	case metapb.RegionRole_Follower:
		return greptimekey.RegionRoleFollower
	case metapb.RegionRole_DowngradingLeader:
		return greptimekey.RegionRoleDowngradingLeader
	case metapb.RegionRole_StagingLeader:
		return greptimekey.RegionRoleStagingLeader
	default:
		return greptimekey.RegionRoleLeader
	}
}

// collectClusterInfo records the node's info under its node-info key; a
// datanode's only with a stat (a regular heartbeat).
func collectClusterInfo(ctx context.Context, hc *handlerCtx) (bool, error) {
	req, role := hc.req, hc.sess.id.Role
	peer, info := req.GetPeer(), req.GetInfo()
	if req.GetHeader() == nil || peer == nil || info == nil {
		return false, nil
	}
	if role == metapb.Role_DATANODE && hc.stat == nil {
		return false, nil
	}
	id := peer.GetId()
	ni := greptimekey.NodeInfo{
		Peer:               greptimekey.Peer{ID: peer.GetId(), Addr: peer.GetAddr()},
		LastActivityTs:     hc.now.UnixMilli(),
		Version:            info.GetVersion(),
		GitCommit:          info.GetGitCommit(),
		StartTimeMs:        info.GetStartTimeMs(),
		TotalCPUMillicores: info.GetTotalCpuMillicores(),
		TotalMemoryBytes:   info.GetTotalMemoryBytes(),
		CPUUsageMillicores: info.GetCpuUsageMillicores(),
		MemoryUsageBytes:   info.GetMemoryUsageBytes(),
		Hostname:           info.GetHostname(),
		EnvVars:            envVars(req),
	}
	var krole greptimekey.Role
	switch role {
	case metapb.Role_DATANODE:
		krole = greptimekey.RoleDatanode
		ni.LastActivityTs = hc.stat.TimestampMillis
		ds := &greptimekey.DatanodeStatus{Rcus: hc.stat.Rcus, Wcus: hc.stat.Wcus, Workloads: hc.stat.DatanodeWorkloads}
		for _, r := range hc.stat.RegionStats {
			if r.Role == greptimekey.RegionRoleLeader || r.Role == greptimekey.RegionRoleStagingLeader {
				ds.LeaderRegions++
			} else {
				ds.FollowerRegions++
			}
		}
		ni.Status = greptimekey.NodeStatus{Role: greptimekey.RoleDatanode, Datanode: ds}
	case metapb.Role_FRONTEND:
		krole = greptimekey.RoleFrontend
		id = greptimekey.FrontendNodeID(peer.GetAddr())
		ni.Status = greptimekey.NodeStatus{Role: greptimekey.RoleFrontend, Workloads: frontendTypes(req)}
	case metapb.Role_FLOWNODE:
		krole = greptimekey.RoleFlownode
		ni.Status = greptimekey.NodeStatus{Role: greptimekey.RoleFlownode, Workloads: flownodeTypes(req)}
	}
	value, err := ni.Encode()
	if err != nil {
		return false, fmt.Errorf("encode node info of %s: %w", hc.sess.id, err)
	}
	if _, err := hc.sess.memory().Put(ctx, kv.PutRequest{Key: greptimekey.NodeInfoKey(krole, id), Value: value}); err != nil {
		return false, fmt.Errorf("save node info of %s: %w", hc.sess.id, err)
	}
	return false, nil
}

// envVars reads the "__env_vars" extension ({"vars":{...}}), {} without it.
func envVars(req *metapb.HeartbeatRequest) map[string]string {
	out := map[string]string{}
	raw, ok := req.GetExtensions()["__env_vars"]
	if !ok {
		return out
	}
	var ext struct {
		Vars map[string]string `json:"vars"`
	}
	if json.Unmarshal(raw, &ext) == nil && ext.Vars != nil {
		return ext.Vars
	}
	return out
}

// mailboxReply hands a reply the node sent back to the message waiting for
// it, and ends the chain: the heartbeat that carries a reply is answered
// with the header alone, as GreptimeDB's MailboxHandler does.
func mailboxReply(_ context.Context, hc *handlerCtx) (bool, error) {
	msg := hc.req.GetMailboxMessage()
	if msg == nil {
		return false, nil
	}
	if ts := hc.sess.term; ts != nil {
		ts.mailbox.deliver(hc.sess.svc.log, hc.sess, msg, hc.sess.svc.metrics)
	}
	return true, nil
}

// regionLease asks Options.RegionLeaser for the lease of a datanode's
// regular heartbeat (one with a stat, as GreptimeDB's RegionLeaseHandler).
func regionLease(ctx context.Context, hc *handlerCtx) (bool, error) {
	leaser, ts := hc.sess.svc.opts.RegionLeaser, hc.sess.term
	if leaser == nil || hc.stat == nil || ts == nil {
		return false, nil
	}
	lease, err := leaser.Lease(ctx, ts.id, ts.store, hc.stat.ID, hc.req)
	if err != nil {
		return false, fmt.Errorf("region lease of datanode %d: %w", hc.stat.ID, err)
	}
	hc.resp.RegionLease = lease
	return false, nil
}

// epochStats are the stats of one datanode's current epoch not written yet.
type epochStats struct {
	epoch uint64
	stats []greptimekey.Stat
}

// collectStats buffers the datanode's stats and writes them, as a batch, to
// its stat key every flushStatsFactor heartbeats; a datanode seen for the
// first time in this term, or with a newer node epoch (it restarted), has
// its stats restarted and its __node_address rewritten in the durable store.
func collectStats(ctx context.Context, hc *handlerCtx) (bool, error) {
	st, ts := hc.stat, hc.sess.term
	if st == nil || ts == nil {
		return false, nil
	}
	ts.mu.Lock()
	es, seen := ts.epochs[st.ID]
	refresh := false
	switch {
	case !seen:
		es = &epochStats{epoch: st.NodeEpoch}
		ts.epochs[st.ID] = es
		refresh = true
	case st.NodeEpoch > es.epoch:
		es.epoch, es.stats = st.NodeEpoch, nil
		refresh = true
	case st.NodeEpoch < es.epoch:
		ts.mu.Unlock()
		return false, nil // a stale stat from an earlier life of the node
	}
	es.stats = append(es.stats, *st)
	var flush []greptimekey.Stat
	if refresh || len(es.stats) >= defaultFlushStatsFactor {
		flush, es.stats = es.stats, nil
	}
	ts.mu.Unlock()

	var errs []error
	if refresh {
		if err := rewriteNodeAddress(ctx, ts, greptimekey.RoleDatanode, st.ID, st.Addr); err != nil {
			errs = append(errs, err)
		}
	}
	if flush != nil {
		value, err := greptimekey.StatValue(flush).Encode()
		if err == nil {
			_, err = hc.sess.memory().Put(ctx, kv.PutRequest{Key: greptimekey.DatanodeStatKey(st.ID), Value: value})
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("save stats of datanode %d: %w", st.ID, err))
		}
	}
	return false, errors.Join(errs...)
}

// remapFlowPeer rewrites a flownode's __node_address when this term first
// sees it or it restarted.
func remapFlowPeer(ctx context.Context, hc *handlerCtx) (bool, error) {
	peer, ts := hc.req.GetPeer(), hc.sess.term
	if peer == nil || ts == nil {
		return false, nil
	}
	epoch := hc.req.GetNodeEpoch()
	ts.mu.Lock()
	last, seen := ts.flows[peer.GetId()]
	refresh := !seen || epoch > last
	if refresh {
		ts.flows[peer.GetId()] = epoch
	}
	ts.mu.Unlock()
	if !refresh {
		return false, nil
	}
	return false, rewriteNodeAddress(ctx, ts, greptimekey.RoleFlownode, peer.GetId(), peer.GetAddr())
}

// rewriteNodeAddress writes __node_address/{role}/{id} through the term's
// fenced store.
func rewriteNodeAddress(ctx context.Context, ts *termState, role greptimekey.Role, id uint64, addr string) error {
	value, err := greptimekey.NodeAddressValue{Peer: greptimekey.Peer{ID: id, Addr: addr}}.Encode()
	if err != nil {
		return fmt.Errorf("encode node address of %s %d: %w", role, id, err)
	}
	if _, err := ts.store.Put(ctx, kv.PutRequest{Key: greptimekey.NodeAddressKey(role, id), Value: value}); err != nil {
		return fmt.Errorf("rewrite node address of %s %d: %w", role, id, err)
	}
	return nil
}
