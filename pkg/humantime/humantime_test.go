package humantime

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestHumantimeFormat(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		0:                                  "0s",
		time.Second:                        "1s",
		9420 * time.Second:                 "2h 37m", // humantime's format_duration doc
		32 * time.Millisecond:              "32ms",   // same
		time.Second + 1500*time.Nanosecond: "1s 1us 500ns",
		86400 * time.Second:                "1day",
		2 * 86400 * time.Second:            "2days",
		31_557_600 * time.Second:           "1year",
		(2*31_557_600 + 2_630_016 + 61) * time.Second: "2years 1month 1m 1s",
	} {
		got, err := Format(d)
		require.NoError(t, err)
		require.Equal(t, want, got, d.String())
		back, err := Parse(got)
		require.NoError(t, err)
		require.Equal(t, d, back, got)
	}
	_, err := Format(-time.Second)
	require.Error(t, err)
}

func TestHumantimeParse(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]time.Duration{
		"0":               0,
		"00":              0,
		"2h 37min":        9420 * time.Second, // humantime's parse_duration doc
		"1h30m":           90 * time.Minute,
		"20 min 17 nsec ": 20*time.Minute + 17,
		"  5s":            5 * time.Second,
		"163µs":           163 * time.Microsecond,
		"1week":           7 * 24 * time.Hour,
		"12M":             31_560_192 * time.Second,
		"3millis":         3 * time.Millisecond,
	} {
		got, err := Parse(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, in := range []string{"", " ", "5", "s", "1.5s", "1 fortnight", "1s-", "99999999999999999999s", "300years"} {
		_, err := Parse(in)
		require.Error(t, err, in)
	}
}
