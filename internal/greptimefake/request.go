package greptimefake

import (
	"bufio"
	"bytes"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"

	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
)

// What a fake node reports as its build (NodeInfo.version, git_commit):
// GreptimeDB v1.1.4's.
const (
	Version   = "1.1.4"
	GitCommit = "16e9abe4a9"
)

// Extension keys GreptimeDB nodes put in HeartbeatRequest.extensions.
const (
	// GcStatKey carries the datanode's GcStat JSON on every beat and
	// mailbox reply.
	GcStatKey = "__gc_stat"
)

// Shared, read-only parts of every node's requests (protobuf marshals them
// concurrently without writing anything but atomic size caches).
var (
	// The datanode's GcStat with mito's defaults: no GC running, 4 at most
	// (max_concurrent_gc_job).
	datanodeExtensions = map[string][]byte{GcStatKey: []byte(`{"running_gc_tasks":0,"gc_concurrency":4}`)}
	// workload_types default [Hybrid = 0].
	datanodeWorkloads = &metapb.HeartbeatRequest_Datanode{Datanode: &metapb.DatanodeWorkloads{Types: []int32{0}}}
	frontendWorkloads = &metapb.HeartbeatRequest_Frontend{Frontend: &metapb.FrontendWorkloads{}}
)

var hostname = sync.OnceValue(func() string {
	h, _ := os.Hostname()
	return h
})

// totalMemoryBytes is MemTotal from /proc/meminfo, 0 where there is none.
var totalMemoryBytes = sync.OnceValue(func() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := bytes.Fields(sc.Bytes())
		if len(f) >= 2 && string(f[0]) == "MemTotal:" {
			kb, err := strconv.ParseInt(string(f[1]), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
})

// nodeInfo is what build_node_info reports; the usage fields stay 0.
func nodeInfo(startMs uint64) *metapb.NodeInfo {
	cpu := int64(runtime.NumCPU()) * 1000
	mem := totalMemoryBytes()
	info := &metapb.NodeInfo{
		Version:            Version,
		GitCommit:          GitCommit,
		StartTimeMs:        startMs,
		TotalCpuMillicores: cpu,
		TotalMemoryBytes:   mem,
		Hostname:           hostname(),
	}
	// GreptimeDB fills the deprecated fields too, cpus with the millicores.
	//lint:ignore SA1019 sent as GreptimeDB sends it
	info.Cpus = uint32(cpu)
	//lint:ignore SA1019 sent as GreptimeDB sends it
	info.MemoryBytes = uint64(mem)
	return info
}

// beat builds the periodic request of the node's role.
func (n *Node) beat() *metapb.HeartbeatRequest {
	req := n.base()
	if n.cfg.Role == metapb.Role_DATANODE {
		switch f := n.cfg.RegionStats; {
		case n.regions != nil:
			req.RegionStats = n.regions.stats()
		case f != nil:
			req.RegionStats = f()
		}
		req.DurationSinceEpoch = uint64(time.Since(n.start).Milliseconds())
		req.Extensions = datanodeExtensions
	}
	return req
}

// mailboxReply builds the request that carries a mailbox reply: the base
// request with the message (datanodes add their extensions, no stats).
func (n *Node) mailboxReply(msg *metapb.MailboxMessage) *metapb.HeartbeatRequest {
	req := n.base()
	req.MailboxMessage = msg
	if n.cfg.Role == metapb.Role_DATANODE {
		req.Extensions = datanodeExtensions
	}
	return req
}

// base is the role's heartbeat_request template: datanode peer, node_epoch,
// info, workloads; frontend peer (id 0), info, workloads; flownode peer,
// node_epoch, info. Every request carries the header (HeartbeatSender::send).
func (n *Node) base() *metapb.HeartbeatRequest {
	req := &metapb.HeartbeatRequest{Header: n.header, Peer: n.peer, Info: n.info}
	switch n.cfg.Role {
	case metapb.Role_DATANODE:
		req.NodeEpoch = n.epochMs
		req.NodeWorkloads = datanodeWorkloads
	case metapb.Role_FRONTEND:
		req.NodeWorkloads = frontendWorkloads
	case metapb.Role_FLOWNODE:
		req.NodeEpoch = n.epochMs
	}
	return req
}
