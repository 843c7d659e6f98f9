package grpczstd

import (
	"bytes"
	"io"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc/encoding"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRoundTripThroughTheRegistry(t *testing.T) {
	t.Parallel()
	c := encoding.GetCompressor(Name)
	require.NotNil(t, c, "registered at init")
	require.NotNil(t, encoding.GetCompressor("gzip"), "gzip beside it")
	msg := bytes.Repeat([]byte("__meta_datanode_lease-0-42 "), 100)
	for range 3 { // pooled encoders and decoders are reused cleanly
		var buf bytes.Buffer
		w, err := c.Compress(&buf)
		require.NoError(t, err)
		_, err = w.Write(msg)
		require.NoError(t, err)
		require.NoError(t, w.Close())
		require.Less(t, buf.Len(), len(msg))
		r, err := c.Decompress(&buf)
		require.NoError(t, err)
		got, err := io.ReadAll(r)
		require.NoError(t, err)
		require.Equal(t, msg, got)
	}
	_, err := c.Decompress(bytes.NewReader([]byte("not zstd")))
	if err == nil {
		r, _ := c.Decompress(bytes.NewReader([]byte("not zstd")))
		_, err = io.ReadAll(r)
	}
	require.Error(t, err)
}
