package config

import (
	"io"
	"log/slog"
)

// NewLogger builds the process logger from the logging options: text or JSON
// on w, at the configured level. Components derive their own with
// logger.With("component", name).
func NewLogger(w io.Writer, o LoggingOptions) (*slog.Logger, error) {
	newHandler, err := parseLogging(o)
	if err != nil {
		return nil, err
	}
	return slog.New(newHandler(w)), nil
}

// parseLogging checks logging.level and logging.format (for Validate and
// NewLogger alike) and returns the handler they describe.
func parseLogging(o LoggingOptions) (func(io.Writer) slog.Handler, error) {
	var level slog.Level
	switch o.Level {
	case "debug":
		level = slog.LevelDebug
	case "info":
		level = slog.LevelInfo
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		return nil, invalid("logging.level", "unknown level %q (expected debug, info, warn or error)", o.Level)
	}
	ho := &slog.HandlerOptions{Level: level}
	switch o.Format {
	case "text":
		return func(w io.Writer) slog.Handler { return slog.NewTextHandler(w, ho) }, nil
	case "json":
		return func(w io.Writer) slog.Handler { return slog.NewJSONHandler(w, ho) }, nil
	}
	return nil, invalid("logging.format", "unknown format %q (expected text or json)", o.Format)
}
