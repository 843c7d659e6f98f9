// Package regionclient is metasrv's client of a GreptimeDB datanode's region
// server (greptime.v1.region.Region/Handle): DDL procedures send it the
// create, drop and close requests of a table's regions.
//
// A failed call becomes a *statuscode.Error: the datanode's GreptimeDB status
// code when its answer carries one (the x-greptime-err-code metadata, or a
// failed status in the response header), else a code that follows from the
// gRPC code. Callers tell a transient failure (the datanode unreachable, a
// deadline) from a refusal with Transient.
package regionclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	regionpb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/region"
	_ "github.com/pgmetasrv/metasrv/pkg/grpczstd" // datanodes may answer zstd-compressed
	"github.com/pgmetasrv/metasrv/pkg/statuscode"
)

// ErrClosed is a call on a closed Client.
var ErrClosed = errors.New("regionclient: closed")

// DefaultTimeout bounds one call when the caller's context has no deadline.
const DefaultTimeout = 30 * time.Second

// Client holds one connection per datanode address, opened on first use and
// closed by Close.
type Client struct {
	log  *slog.Logger
	opts []grpc.DialOption

	mu     sync.Mutex
	closed bool
	conns  map[string]*grpc.ClientConn
}

// New returns a Client dialling datanodes in clear text (GreptimeDB's
// default), with extra dial options after that default.
func New(logger *slog.Logger, opts ...grpc.DialOption) *Client {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Client{
		log:   logger.With("component", "region_client"),
		opts:  append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...),
		conns: make(map[string]*grpc.ClientConn),
	}
}

func (c *Client) conn(addr string) (*grpc.ClientConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	if cc, ok := c.conns[addr]; ok {
		return cc, nil
	}
	cc, err := grpc.NewClient(addr, c.opts...)
	if err != nil {
		return nil, fmt.Errorf("regionclient: datanode address %q: %w", addr, err)
	}
	c.conns[addr] = cc
	return cc, nil
}

// Handle sends req to the datanode at addr and returns its answer, or a
// *statuscode.Error (wrapped) saying why it failed.
func (c *Client) Handle(ctx context.Context, addr string, req *regionpb.RegionRequest) (*regionpb.RegionResponse, error) {
	cc, err := c.conn(addr)
	if err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	var header, trailer metadata.MD
	resp, err := regionpb.NewRegionClient(cc).Handle(ctx, req, grpc.Header(&header), grpc.Trailer(&trailer))
	if err != nil {
		return nil, fmt.Errorf("datanode %s: %w", addr, callError(err, header, trailer))
	}
	if st := resp.GetHeader().GetStatus(); st != nil && st.GetStatusCode() != uint32(statuscode.Success) {
		return nil, fmt.Errorf("datanode %s: %w", addr, &statuscode.Error{Status: statuscode.Code(st.GetStatusCode()), Msg: st.GetErrMsg()})
	}
	return resp, nil
}

// callError turns a failed call into a *statuscode.Error, keeping the gRPC
// status in the chain (for Transient).
func callError(err error, mds ...metadata.MD) error {
	st, _ := status.FromError(err)
	code, ok := statuscode.FromMetadata(mds...)
	if !ok {
		code = fromGRPC(st.Code())
	}
	return &callFailure{status: &statuscode.Error{Status: code, Msg: st.Message()}, grpc: st.Code()}
}

// callFailure is a failed call: its GreptimeDB code and its gRPC code.
type callFailure struct {
	status *statuscode.Error
	grpc   codes.Code
}

func (f *callFailure) Error() string { return f.status.Msg }
func (f *callFailure) Unwrap() error { return f.status }

// fromGRPC is what GreptimeDB's client assumes when a failure carries no
// status code: cancelled and deadline exceeded keep their meaning, anything
// else is Internal.
func fromGRPC(c codes.Code) statuscode.Code {
	switch c {
	case codes.Canceled:
		return statuscode.Cancelled
	case codes.DeadlineExceeded:
		return statuscode.DeadlineExceeded
	default:
		return statuscode.Internal
	}
}

// Transient reports whether err is a failure worth retrying: the datanode
// could not be reached or did not answer in time, or said it is busy or not
// ready.
func Transient(err error) bool {
	var f *callFailure
	if errors.As(err, &f) {
		switch f.grpc {
		case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Aborted:
			return true
		}
	}
	if c, ok := statuscode.Of(err); ok {
		switch c {
		case statuscode.RegionBusy, statuscode.RegionNotReady, statuscode.StorageUnavailable,
			statuscode.RuntimeResourcesExhausted, statuscode.RateLimited, statuscode.TableUnavailable:
			return true
		}
	}
	return false
}

// Close closes every connection; safe to call twice.
func (c *Client) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for addr, cc := range c.conns {
		if err := cc.Close(); err != nil {
			c.log.Debug("closing a datanode connection failed", "addr", addr, "err", err)
		}
		delete(c.conns, addr)
	}
}
