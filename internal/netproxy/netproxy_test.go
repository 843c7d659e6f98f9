package netproxy

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// echoServer answers every connection by echoing it back.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().String()
}

func startProxy(t *testing.T, upstream string) *Proxy {
	t.Helper()
	p, err := Start(context.Background(), "127.0.0.1:0", "tcp", upstream, nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Close()) })
	return p
}

func roundTrip(c net.Conn, msg string, wait time.Duration) (string, error) {
	if _, err := c.Write([]byte(msg)); err != nil {
		return "", err
	}
	if err := c.SetReadDeadline(time.Now().Add(wait)); err != nil {
		return "", err
	}
	buf := make([]byte, len(msg))
	_, err := io.ReadFull(c, buf)
	return string(buf), err
}

func TestProxyForwardsPartitionsAndHeals(t *testing.T) {
	p := startProxy(t, echoServer(t))
	c, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	defer c.Close()
	got, err := roundTrip(c, "hello", 5*time.Second)
	require.NoError(t, err)
	require.Equal(t, "hello", got)

	p.Partition()
	require.True(t, p.Partitioned())
	// Silence, not a reset: the read times out.
	_, err = roundTrip(c, "lost", 200*time.Millisecond)
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)

	// New connections are accepted but silent too.
	c2, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	defer c2.Close()
	_, err = roundTrip(c2, "lost", 200*time.Millisecond)
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)

	// Healing closes the connections that saw dropped bytes...
	p.Heal()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, err = c.Read(make([]byte, 16))
	require.True(t, errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || isReset(err), "got %v", err)

	// ...and new ones work again.
	c3, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	defer c3.Close()
	got, err = roundTrip(c3, "again", 5*time.Second)
	require.NoError(t, err)
	require.Equal(t, "again", got)
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op)
}

func TestProxyPassesCloseWhenNotPartitioned(t *testing.T) {
	upstream, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer upstream.Close()
	p := startProxy(t, upstream.Addr().String())
	c, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	defer c.Close()
	s, err := upstream.Accept()
	require.NoError(t, err)
	require.NoError(t, s.Close())
	require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, err = c.Read(make([]byte, 1))
	require.ErrorIs(t, err, io.EOF)
}

func TestProxyCloseTwiceAndBadNetwork(t *testing.T) {
	p, err := Start(context.Background(), "127.0.0.1:0", "tcp", echoServer(t), nil)
	require.NoError(t, err)
	require.NoError(t, p.Close())
	require.NoError(t, p.Close())

	_, err = Start(context.Background(), "127.0.0.1:0", "udp", "127.0.0.1:1", nil)
	require.ErrorContains(t, err, `upstream network "udp"`)
}
