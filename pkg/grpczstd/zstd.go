// Package grpczstd registers a zstd compressor with gRPC, under the name
// "zstd" that GreptimeDB's meta clients send as grpc-encoding, and gzip
// beside it. Import it for its side effect, on the server (package
// greptimeapi does) and in any client that sends zstd (the fake GreptimeDB
// nodes of the heartbeat benchmark).
package grpczstd

import (
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"
	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/gzip" // GreptimeDB's clients accept gzip answers and may send gzip.
)

// Name is the grpc-encoding GreptimeDB's meta clients send.
const Name = "zstd"

// gRPC's compressor registry is process-wide by design; registering at init
// is the only way to serve an encoding, as its gzip package does.
func init() { encoding.RegisterCompressor(newZstdCompressor()) }

// zstdCompressor pools encoders and decoders: building one allocates its
// window, far more than one heartbeat.
type zstdCompressor struct {
	encoders, decoders sync.Pool
}

func newZstdCompressor() *zstdCompressor {
	c := &zstdCompressor{}
	c.encoders.New = func() any {
		w, _ := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedFastest))
		return w
	}
	c.decoders.New = func() any {
		r, _ := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
		return r
	}
	return c
}

func (c *zstdCompressor) Name() string { return Name }

func (c *zstdCompressor) Compress(w io.Writer) (io.WriteCloser, error) {
	enc := c.encoders.Get().(*zstd.Encoder)
	enc.Reset(w)
	return &pooledEncoder{Encoder: enc, pool: &c.encoders}, nil
}

type pooledEncoder struct {
	*zstd.Encoder
	pool *sync.Pool
}

func (e *pooledEncoder) Close() error {
	err := e.Encoder.Close()
	e.pool.Put(e.Encoder)
	return err
}

func (c *zstdCompressor) Decompress(r io.Reader) (io.Reader, error) {
	dec := c.decoders.Get().(*zstd.Decoder)
	if err := dec.Reset(r); err != nil {
		c.decoders.Put(dec)
		return nil, err
	}
	return &pooledDecoder{Decoder: dec, pool: &c.decoders}, nil
}

// pooledDecoder returns its decoder to the pool once the message is read.
type pooledDecoder struct {
	*zstd.Decoder
	pool *sync.Pool
	done bool
}

func (d *pooledDecoder) Read(p []byte) (int, error) {
	if d.done {
		return 0, io.EOF
	}
	n, err := d.Decoder.Read(p)
	if err == io.EOF {
		d.done = true
		d.pool.Put(d.Decoder)
	}
	return n, err
}
