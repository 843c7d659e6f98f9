package config

// ByteSize is a size in bytes, written in configuration as "1500KiB",
// "1.5MiB", "512B" or a plain number of bytes.
type ByteSize int64

const (
	B   ByteSize = 1
	KiB          = 1024 * B
	MiB          = 1024 * KiB
	GiB          = 1024 * MiB
)
