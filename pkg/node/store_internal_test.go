package node

import (
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/migrations"
	"github.com/pgmetasrv/metasrv/pkg/kv/pgkv"
)

// A migration cut by PostgreSQL restarting is retried; a refusal is not.
func TestConnectionLostDecidesMigrationRetry(t *testing.T) {
	t.Parallel()
	restart := fmt.Errorf("migrate: failed to initialize: failed to execute pg_try_advisory_lock: %w",
		&pgconn.PgError{Severity: "FATAL", Code: "57P01", Message: "terminating connection due to administrator command"})
	require.True(t, pgkv.IsConnFailure(restart))
	require.True(t, pgkv.IsConnFailure(fmt.Errorf("up: %w", io.ErrUnexpectedEOF)))
	require.True(t, pgkv.IsConnFailure(errors.Join(restart, errors.New("clean up after the failed migration"))))
	require.False(t, pgkv.IsConnFailure(fmt.Errorf("up: %w", migrations.ErrTableLayout)))
	require.False(t, pgkv.IsConnFailure(&pgconn.PgError{Severity: "ERROR", Code: "42P07", Message: "relation already exists"}))
}
