package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRenderRoundTrip(t *testing.T) {
	t.Parallel()
	o := Default()
	o.Backend = BackendPostgres
	o.StoreAddrs = []string{"postgres://a/db", "host=b dbname=c"}
	o.MetaSchemaName = "meta"
	o.NodeMaxIdleTime = 90 * time.Minute
	o.Procedure.MaxMetadataValueSize = 1536 * KiB
	o.Election.CampaignInterval = 1500 * time.Millisecond

	out, err := Render(o)
	require.NoError(t, err)
	require.Contains(t, string(out), "node_max_idle_time = '1h30m'")
	require.Contains(t, string(out), "retry_delay = '500ms'")
	require.Contains(t, string(out), "max_metadata_value_size = '1.5MiB'")
	require.Contains(t, string(out), "campaign_interval = '1.5s'")

	path := filepath.Join(t.TempDir(), "rendered.toml")
	require.NoError(t, os.WriteFile(path, out, 0o600))
	back, err := Load(path, nil, nil)
	require.NoError(t, err)
	require.Equal(t, o, back)
}

func TestFormatDuration(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   time.Duration
		want string
	}{
		{0, "0s"},
		{500 * time.Millisecond, "500ms"},
		{5 * time.Second, "5s"},
		{10 * time.Minute, "10m"},
		{24 * time.Hour, "24h"},
		{time.Hour + 5*time.Second, "1h0m5s"},
		{90 * time.Second, "1m30s"},
	}
	for _, tc := range tests {
		require.Equal(t, tc.want, formatDuration(tc.in))
		back, err := time.ParseDuration(tc.want)
		require.NoError(t, err)
		require.Equal(t, tc.in, back)
	}
}
