package metasrvv1

import (
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/status"
)

// The google.rpc.ErrorInfo a metasrv server attaches to the statuses a client
// must act on. They are part of the API contract: clients match Reason (within
// ErrorDomain), never the status message.
const (
	// ErrorDomain is ErrorInfo.domain on every metasrv error detail.
	ErrorDomain = "metasrv"

	// ReasonNotLeader (UNAVAILABLE): this node is not the leader and did not
	// execute the call. MetadataLeader holds the leader's address when known.
	ReasonNotLeader = "NOT_LEADER"
	// ReasonFenced (UNAVAILABLE): this node lost leadership while serving the
	// call; its write was refused and not applied.
	ReasonFenced = "FENCED"
	// ReasonNoLeader (UNAVAILABLE): no leader is elected right now.
	ReasonNoLeader = "NO_LEADER"
	// ReasonBackendUnavailable (UNAVAILABLE): the storage backend could not be
	// reached; the call was not applied.
	ReasonBackendUnavailable = "BACKEND_UNAVAILABLE"
	// ReasonOutcomeUnknown (UNKNOWN): a write was sent to the storage backend
	// but its result was lost; it may or may not have been applied.
	ReasonOutcomeUnknown = "OUTCOME_UNKNOWN"

	// MetadataLeader is the ErrorInfo.metadata key holding the leader's
	// address (host:port) on ReasonNotLeader.
	MetadataLeader = "leader"
)

// ErrorInfoOf returns the metasrv ErrorInfo detail carried by err's gRPC
// status, if any. A status without one did not come from a metasrv handler
// (a lost connection, a proxy, the gRPC runtime).
func ErrorInfoOf(err error) (*errdetails.ErrorInfo, bool) {
	st, ok := status.FromError(err)
	if !ok {
		return nil, false
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == ErrorDomain {
			return info, true
		}
	}
	return nil, false
}
