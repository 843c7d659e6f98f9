package election

import "errors"

// ErrNotLeader is matched (errors.Is) by every NotLeaderError.
var ErrNotLeader = errors.New("not leader")

// NotLeaderError refuses a leader-only request on a node that does not lead
// (or no longer trusts that it does). Leader names the node that does, when
// known, so a client can go there.
type NotLeaderError struct {
	Leader string
}

func (e *NotLeaderError) Error() string {
	if e.Leader == "" {
		return "not leader; no leader is known at the moment"
	}
	return "not leader; the leader is " + e.Leader
}

// Is makes errors.Is(err, ErrNotLeader) hold.
func (e *NotLeaderError) Is(target error) bool { return target == ErrNotLeader }
