package config

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseByteSize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want ByteSize
	}{
		{"0", 0},
		{"512", 512},
		{"512B", 512},
		{"1500KiB", 1500 * KiB},
		{"1500kib", 1500 * KiB},
		{"1.5MiB", 1536 * KiB},
		{"1.5 MiB", 1536 * KiB},
		{"2GiB", 2 * GiB},
		{"1TiB", TiB},
		{"0.5KiB", 512},
	}
	for _, tc := range tests {
		got, err := ParseByteSize(tc.in)
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, got, tc.in)
	}
}

func TestParseByteSizeErrors(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"", "KiB", "-1", "1.5.5MiB", "12XB", "0.3KiB", "99999999999TiB", "1e3"} {
		_, err := ParseByteSize(in)
		require.Error(t, err, in)
	}
}

// KB, MB... mean 1000-based units to some and 1024-based ones to others; they
// are refused with the 1024-based unit to write instead.
func TestParseByteSizeRefusesAmbiguousUnits(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"1500KB", `invalid size "1500KB": unit "KB" is ambiguous (1000- or 1024-based?); use KiB/MiB/GiB/TiB (1024-based), e.g. 1500KiB`},
		{"1.5MB", "e.g. 1.5MiB"},
		{"2gb", "e.g. 2GiB"},
		{"1T", "e.g. 1TiB"},
		{"16k", "e.g. 16KiB"},
	}
	for _, tc := range tests {
		_, err := ParseByteSize(tc.in)
		require.ErrorContains(t, err, tc.want, tc.in)
	}
	_, err := ParseByteSize("12XB")
	require.ErrorContains(t, err, "expected B, KiB, MiB, GiB or TiB, 1024-based")
}

func TestByteSizeString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   ByteSize
		want string
	}{
		{0, "0B"},
		{512, "512B"},
		{1000, "1000B"},
		{KiB, "1KiB"},
		{1500 * KiB, "1500KiB"},
		{1536 * KiB, "1.5MiB"},
		{1536*KiB + 1, "1572865B"},
		{3 * GiB, "3GiB"},
		{1280 * MiB, "1.25GiB"},
	}
	for _, tc := range tests {
		require.Equal(t, tc.want, tc.in.String())
		text, err := tc.in.MarshalText()
		require.NoError(t, err)
		var back ByteSize
		require.NoError(t, back.UnmarshalText(text))
		require.Equal(t, tc.in, back, "round trip of %s", text)
	}
}
