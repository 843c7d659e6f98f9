package node

import (
	"context"
	"crypto/tls"
	"fmt"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
)

// peerConns are this node's client connections to other metasrv nodes, by
// address: a follower forwards a GreptimeDB Store write to the leader on
// them. They are opened lazily and closed with the node.
type peerConns struct {
	creds credentials.TransportCredentials

	mu     sync.Mutex
	closed bool
	conns  map[string]*grpc.ClientConn
}

// newPeerConns speaks to peers as clients speak to this node: in clear text,
// or, with grpc.tls, over TLS with this node's own certificate as its client
// certificate and the configured CA (the one that signs the cluster's nodes)
// as the roots.
func newPeerConns(serverTLS *tls.Config) *peerConns {
	p := &peerConns{creds: insecure.NewCredentials(), conns: make(map[string]*grpc.ClientConn)}
	if serverTLS != nil {
		p.creds = credentials.NewTLS(&tls.Config{
			Certificates: serverTLS.Certificates,
			RootCAs:      serverTLS.ClientCAs, // nil: the system roots
			MinVersion:   tls.VersionTLS12,
		})
	}
	return p
}

// store returns the Store client of the node at addr.
func (p *peerConns) store(_ context.Context, addr string) (metapb.StoreClient, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, fmt.Errorf("node: stopped, not forwarding to %s", addr)
	}
	c, ok := p.conns[addr]
	if !ok {
		var err error
		if c, err = grpc.NewClient(addr, grpc.WithTransportCredentials(p.creds)); err != nil {
			return nil, fmt.Errorf("node: connect to the leader %s: %w", addr, err)
		}
		p.conns[addr] = c
	}
	return metapb.NewStoreClient(c), nil
}

// close closes every connection; safe twice.
func (p *peerConns) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for addr, c := range p.conns {
		_ = c.Close()
		delete(p.conns, addr)
	}
}
