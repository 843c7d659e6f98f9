package pgelection

import (
	"net"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// blackhole is a TCP proxy that can partition: it then drops every byte in
// both directions and, unlike toxiproxy's timeout toxic, does not pass a
// close from one side on to the other, so PostgreSQL sees exactly what a
// real partition shows it: a client that went silent.
type blackhole struct {
	ln       net.Listener
	upstream string

	mu          sync.Mutex
	partitioned bool
	conns       map[net.Conn]struct{}
	wg          sync.WaitGroup
}

func newBlackhole(t testing.TB, upstream string) *blackhole {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	b := &blackhole{ln: ln, upstream: upstream, conns: map[net.Conn]struct{}{}}
	b.wg.Add(1)
	go b.accept()
	t.Cleanup(b.close)
	return b
}

func (b *blackhole) addr() string { return b.ln.Addr().String() }

// partition starts dropping traffic on every connection, open or new.
func (b *blackhole) partition() {
	b.mu.Lock()
	b.partitioned = true
	b.mu.Unlock()
}

func (b *blackhole) isPartitioned() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.partitioned
}

func (b *blackhole) track(c net.Conn) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.conns == nil {
		c.Close()
		return false
	}
	b.conns[c] = struct{}{}
	return true
}

func (b *blackhole) accept() {
	defer b.wg.Done()
	for {
		client, err := b.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", b.upstream)
		if err != nil {
			client.Close()
			continue
		}
		if !b.track(client) || !b.track(server) {
			client.Close()
			server.Close()
			return
		}
		b.wg.Add(2)
		go b.pipe(client, server)
		go b.pipe(server, client)
	}
}

// pipe copies src to dst until src ends. While partitioned it reads and
// drops, and an end of src is not passed on: the far side must find out by
// itself, by its own timeouts.
func (b *blackhole) pipe(src, dst net.Conn) {
	defer b.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !b.isPartitioned() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if !b.isPartitioned() {
				dst.Close()
			}
			return
		}
	}
}

// close ends the proxy and every connection through it.
func (b *blackhole) close() {
	b.ln.Close()
	b.mu.Lock()
	conns := b.conns
	b.conns = nil
	b.mu.Unlock()
	for c := range conns {
		c.Close()
	}
	b.wg.Wait()
}
