package pgkv_test

import (
	"testing"

	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/kv/kvtest"
	"github.com/pgmetasrv/metasrv/pkg/kv/pgkv"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	kvtest.Run(t, func(t *testing.T) kv.Backend { return db.newStore(t, pgkv.Options{}) })
}
