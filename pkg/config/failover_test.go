package config

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// GreptimeDB v1.1.4 meta-srv metasrv.rs:362-380 (MetasrvOptions::default)
// and failure_detector.rs:74-84.
func TestFailoverDefaultsAreGreptimeDBs(t *testing.T) {
	t.Parallel()
	o := Default()
	require.False(t, o.EnableRegionFailover)
	require.Equal(t, 10*time.Minute, o.RegionFailureDetectorInitializationDelay)
	require.False(t, o.AllowRegionFailoverOnLocalWAL)
	require.Equal(t, FailureDetectorOptions{
		Threshold: 8, MinStdDeviation: 100 * time.Millisecond,
		AcceptableHeartbeatPause: 10 * time.Second, FirstHeartbeatEstimate: time.Second,
	}, o.FailureDetector)
	require.False(t, o.RemoteWAL())
}

// GreptimeDB's own example (config/metasrv.example.toml:64-73, 186-195)
// loads to the defaults.
func TestFailoverKeysOfGreptimeDBsExample(t *testing.T) {
	t.Parallel()
	path := writeFile(t, `
enable_region_failover = false
region_failure_detector_initialization_delay = '10m'
allow_region_failover_on_local_wal = false
[failure_detector]
threshold = 8.0
min_std_deviation = "100ms"
acceptable_heartbeat_pause = "10000ms"
`)
	o, err := Load(path, nil, nil)
	require.NoError(t, err)
	require.Equal(t, Default(), o)
}

func TestFailoverKeysFromEveryLayer(t *testing.T) {
	t.Parallel()
	path := writeFile(t, "[failure_detector]\nthreshold = 5\nfirst_heartbeat_estimate = \"3s\"\n")
	o, err := Load(path, nil, []string{
		"METASRV_ENABLE_REGION_FAILOVER=true",
		"METASRV_ALLOW_REGION_FAILOVER_ON_LOCAL_WAL=true",
		"METASRV_REGION_FAILURE_DETECTOR_INITIALIZATION_DELAY=30s",
		"METASRV_FAILURE_DETECTOR__ACCEPTABLE_HEARTBEAT_PAUSE=5s",
		"METASRV_FAILURE_DETECTOR__MIN_STD_DEVIATION=250ms",
	})
	require.NoError(t, err)
	require.NoError(t, o.Validate())
	require.True(t, o.EnableRegionFailover)
	require.True(t, o.AllowRegionFailoverOnLocalWAL)
	require.Equal(t, 30*time.Second, o.RegionFailureDetectorInitializationDelay)
	require.Equal(t, FailureDetectorOptions{
		Threshold: 5, MinStdDeviation: 250 * time.Millisecond,
		AcceptableHeartbeatPause: 5 * time.Second, FirstHeartbeatEstimate: 3 * time.Second,
	}, o.FailureDetector, "an integer threshold is a number too")

	out, err := Render(o)
	require.NoError(t, err)
	require.Contains(t, string(out), "enable_region_failover = true")
	require.Contains(t, string(out), "acceptable_heartbeat_pause = '5s'")
	rendered := filepath.Join(t.TempDir(), "rendered.toml")
	require.NoError(t, os.WriteFile(rendered, out, 0o600))
	back, err := Load(rendered, nil, nil)
	require.NoError(t, err)
	require.Equal(t, o, back)
}

func TestFailoverKeysOfTheWrongType(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ file, key, want string }{
		{"[failure_detector]\nthreshold = \"high\"\n", "failure_detector.threshold", "expected a number"},
		{"[failure_detector]\nacceptable_heartbeat_pause = 10000\n", "failure_detector.acceptable_heartbeat_pause", "expected a duration with a unit"},
		{"enable_region_failover = \"yes\"\n", "enable_region_failover", "expected true or false"},
		{"[failure_detector]\nmax_sample_size = 3\n", "failure_detector.max_sample_size", "unknown key"},
	} {
		_, err := Load(writeFile(t, c.file), nil, nil)
		var ce *Error
		require.ErrorAs(t, err, &ce, c.file)
		require.Equal(t, c.key, ce.Key)
		require.ErrorContains(t, err, c.want)
	}
}

func TestValidateFailover(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(*Options)
		key    string // "" means valid
		want   string
	}{
		{"failover allowed on the local WAL", func(o *Options) {
			o.EnableRegionFailover, o.AllowRegionFailoverOnLocalWAL = true, true
		}, "", ""},
		{"allowed but off", func(o *Options) { o.AllowRegionFailoverOnLocalWAL = true }, "", ""},
		{"failover on the local WAL", func(o *Options) { o.EnableRegionFailover = true }, "enable_region_failover",
			"region failover is not supported on a local WAL, and this metasrv's WAL is always local (raft_engine: the wal table is not supported); set allow_region_failover_on_local_wal = true"},
		{"no initialization delay", func(o *Options) { o.RegionFailureDetectorInitializationDelay = 0 }, "", ""},
		{"negative initialization delay", func(o *Options) { o.RegionFailureDetectorInitializationDelay = -time.Second },
			"region_failure_detector_initialization_delay", "must be 0s or more, got -1s"},
		{"zero threshold", func(o *Options) { o.FailureDetector.Threshold = 0 }, "failure_detector.threshold", "greater than 0, got 0"},
		{"NaN threshold", func(o *Options) { o.FailureDetector.Threshold = math.NaN() }, "failure_detector.threshold", "got NaN"},
		{"huge threshold", func(o *Options) { o.FailureDetector.Threshold = math.MaxFloat64 }, "failure_detector.threshold", "greater than 0"},
		{"zero deviation", func(o *Options) { o.FailureDetector.MinStdDeviation = 0 }, "failure_detector.min_std_deviation",
			"must be whole milliseconds from 1ms to 1h, got 0s"},
		{"sub-millisecond deviation", func(o *Options) { o.FailureDetector.MinStdDeviation = 100500 * time.Microsecond },
			"failure_detector.min_std_deviation", "got 100.5ms"},
		{"zero pause", func(o *Options) { o.FailureDetector.AcceptableHeartbeatPause = 0 }, "", ""},
		{"long pause", func(o *Options) { o.FailureDetector.AcceptableHeartbeatPause = 61 * time.Minute },
			"failure_detector.acceptable_heartbeat_pause", "from 0s to 1h, got 1h1m"},
		{"negative pause", func(o *Options) { o.FailureDetector.AcceptableHeartbeatPause = -time.Millisecond },
			"failure_detector.acceptable_heartbeat_pause", "got -1ms"},
		{"zero estimate", func(o *Options) { o.FailureDetector.FirstHeartbeatEstimate = 0 }, "failure_detector.first_heartbeat_estimate", "from 1ms"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := Default()
			tc.mutate(&o)
			err := o.Validate()
			if tc.key == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrInvalidValue)
			var ce *Error
			require.ErrorAs(t, err, &ce)
			require.Equal(t, tc.key, ce.Key)
			require.True(t, strings.HasPrefix(err.Error(), "config: "+tc.key+": "), err.Error())
			require.Contains(t, err.Error(), tc.want)
			require.NotContains(t, err.Error(), "\n")
		})
	}
}
