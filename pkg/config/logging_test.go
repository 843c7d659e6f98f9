package config

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestNewLogger(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log, err := NewLogger(&buf, LoggingOptions{Level: "warn", Format: "json"})
	require.NoError(t, err)
	log.Info("hidden")
	log.With("component", "test").Warn("shown", "err", "boom")
	var rec map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &rec))
	require.Equal(t, "shown", rec["msg"])
	require.Equal(t, "test", rec["component"])

	buf.Reset()
	log, err = NewLogger(&buf, LoggingOptions{Level: "debug", Format: "text"})
	require.NoError(t, err)
	log.Debug("dbg")
	require.Contains(t, buf.String(), "level=DEBUG msg=dbg")

	_, err = NewLogger(&buf, LoggingOptions{Level: "loud", Format: "text"})
	require.ErrorContains(t, err, "logging.level")
	_, err = NewLogger(&buf, LoggingOptions{Level: "info", Format: "xml"})
	require.ErrorContains(t, err, "logging.format")
}
