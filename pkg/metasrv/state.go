package metasrv

import "fmt"

// State is where a node stands, as the seed's become_follower /
// become_leader(false) / become_leader(true).
type State int32

const (
	// Follower: not leading; leader-only calls are refused with the leader's address.
	Follower State = iota
	// LeaderNotReady: elected, the leader cache is loading; leader-only calls
	// are refused until it is ready.
	LeaderNotReady
	// LeaderReady: elected and the cache holds the whole key space.
	LeaderReady
)

func (s State) String() string {
	switch s {
	case Follower:
		return "follower"
	case LeaderNotReady:
		return "leader_not_ready"
	case LeaderReady:
		return "leader"
	default:
		return fmt.Sprintf("State(%d)", int32(s))
	}
}
