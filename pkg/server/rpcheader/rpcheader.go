// Package rpcheader builds the ResponseHeader every metasrv response carries.
package rpcheader

import metasrvv1 "github.com/pgmetasrv/metasrv/pkg/api/metasrv/v1"

// Info is what the answering node knows of the leadership when it answers.
type Info struct {
	// NodeAddr is this node's advertised address (grpc.server_addr).
	NodeAddr string
	// LeaderAddr is the leader's advertised address; empty when unknown.
	LeaderAddr string
	// Term is LeaderAddr's election term; 0 when unknown.
	Term int64
}

// Source reports Info. It is called once per response, so it must answer
// from memory (the core's cached view of the election), never from a query.
type Source interface {
	HeaderInfo() Info
}

// PB is the wire form of i.
func (i Info) PB() *metasrvv1.ResponseHeader {
	return &metasrvv1.ResponseHeader{NodeAddr: i.NodeAddr, LeaderAddr: i.LeaderAddr, Term: i.Term}
}
