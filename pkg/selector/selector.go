package selector

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/kv"
)

// Peer is a chosen datanode: its id and address.
type Peer = greptimekey.Peer

// Selector picks datanodes.
type Selector interface {
	// Select returns the datanodes chosen among those alive in in.Memory.
	Select(ctx context.Context, in Input, opts Options) ([]Peer, error)
}

// Input is what a selection reads: the leader's view of the cluster in the
// current term.
type Input struct {
	// Memory is the leader's in-memory KV of the current term
	// (metasrv.Term.Memory), where heartbeats leave node info and stats.
	Memory kv.Backend
	// HeartbeatInterval is the cluster's heartbeat_interval, from which the
	// datanode lease follows; 0 means nodelist.DefaultHeartbeatInterval.
	HeartbeatInterval time.Duration
	// Now is the time liveness is judged at; zero means time.Now().
	Now time.Time
}

func (in Input) now() time.Time {
	if in.Now.IsZero() {
		return time.Now()
	}
	return in.Now
}

// Options shape one selection (GreptimeDB's SelectorOptions).
type Options struct {
	// MinRequiredItems is how many datanodes to return.
	MinRequiredItems int
	// AllowDuplication lets a datanode be returned more than once, so that
	// more regions than datanodes can be placed. round_robin ignores it, as
	// GreptimeDB's does: it always returns MinRequiredItems peers, cycling.
	AllowDuplication bool
	// ExcludePeerIDs are datanodes never to return.
	ExcludePeerIDs []uint64
	// WorkloadFilter, when set, keeps only the datanodes whose workloads it
	// accepts; see AcceptIngestWorkload.
	WorkloadFilter func(greptimekey.NodeWorkloads) bool
}

func (o Options) validate() error {
	if o.MinRequiredItems < 0 {
		return fmt.Errorf("%w: selector: MinRequiredItems is %d, expected 0 or more", kv.ErrInvalidArgument, o.MinRequiredItems)
	}
	return nil
}

func (o Options) excludes(id uint64) bool { return slices.Contains(o.ExcludePeerIDs, id) }

// AcceptIngestWorkload reports whether a node takes ingest work: a datanode
// with the hybrid workload type (0, the only type GreptimeDB v1.1.4 knows),
// or any node that is not a datanode.
func AcceptIngestWorkload(w greptimekey.NodeWorkloads) bool {
	if w.Role != greptimekey.RoleDatanode {
		return true
	}
	return slices.Contains(w.Types, workloadHybrid)
}

// workloadHybrid is GreptimeDB's DatanodeWorkloadType::Hybrid.
const workloadHybrid = 0

// Kind names a selector, as the `selector` key spells it.
type Kind string

const (
	KindRoundRobin Kind = "round_robin"
	KindLeaseBased Kind = "lease_based"
	KindLoadBased  Kind = "load_based"
)

// DefaultKind is GreptimeDB's default selector.
const DefaultKind = KindRoundRobin

// ErrUnsupportedSelector is returned for a selector name that is none of the
// kinds.
var ErrUnsupportedSelector = errors.New("unsupported selector type")

// ParseKind reads a selector name as GreptimeDB does: the snake_case names and
// their Rust variant names (RoundRobin, LeaseBased, LoadBased).
func ParseKind(s string) (Kind, error) {
	switch s {
	case "round_robin", "RoundRobin":
		return KindRoundRobin, nil
	case "lease_based", "LeaseBased":
		return KindLeaseBased, nil
	case "load_based", "LoadBased":
		return KindLoadBased, nil
	default:
		return "", fmt.Errorf("%w %q (expected %s, %s or %s)", ErrUnsupportedSelector, s, KindRoundRobin, KindLeaseBased, KindLoadBased)
	}
}

// New returns a fresh selector of the named kind.
func New(kind string) (Selector, error) {
	k, err := ParseKind(kind)
	if err != nil {
		return nil, err
	}
	switch k {
	case KindLeaseBased:
		return NewLeaseBased(), nil
	case KindLoadBased:
		return NewLoadBased(), nil
	default:
		return NewRoundRobin(), nil
	}
}

// ErrNotEnoughAvailableDatanodes is matched (errors.Is) by every
// *NotEnoughAvailableError.
var ErrNotEnoughAvailableDatanodes = errors.New("not enough available datanodes")

// StatusRuntimeResourcesExhausted is GreptimeDB's status code for
// NoEnoughAvailableNode, a retryable one.
const StatusRuntimeResourcesExhausted = 6000

// NotEnoughAvailableError is GreptimeDB's NoEnoughAvailableNode for
// datanodes: more were required than could be chosen.
type NotEnoughAvailableError struct {
	Required  int
	Available int
}

func (e *NotEnoughAvailableError) Error() string {
	return fmt.Sprintf("Failed to request datanode, required: %d, but only %d available", e.Required, e.Available)
}

// Is makes errors.Is(err, ErrNotEnoughAvailableDatanodes) hold.
func (e *NotEnoughAvailableError) Is(target error) bool {
	return target == ErrNotEnoughAvailableDatanodes
}

// Code is GreptimeDB's status code for the error (procedure.CodedError).
func (e *NotEnoughAvailableError) Code() uint32 { return StatusRuntimeResourcesExhausted }
