// Package pgtest gives integration tests a real PostgreSQL server.
//
// A test package wires it in once:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// and each test takes its own database with NewDatabase, so tests run in
// parallel without seeing each other's tables. The server is, in order of
// preference: the superuser DSN in METASRV_TEST_PG_DSN; a throwaway cluster
// made from the local initdb/postgres binaries; a testcontainers-go PostgreSQL
// when a Docker engine answers. Without any of them the tests that need
// PostgreSQL are skipped with a loud message, except under CI=true, where they
// fail: CI must really run them.
//
// NewCluster gives one test a dedicated cluster it may stop, restart or
// configure (TLS, pg_hba rules).
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/goleak"
)

// EnvDSN names the environment variable holding a superuser DSN of an
// existing server to test against.
const EnvDSN = "METASRV_TEST_PG_DSN"

// server is the PostgreSQL shared by the tests of one test binary. Starting it
// is deferred to the first NewDatabase, so a run that selects no database test
// costs nothing.
type server struct {
	once    sync.Once
	dsn     string // superuser URL of the maintenance database
	err     error  // why no server could be had
	cleanup func() error
}

// shared is the test binary's server; mainCalled guards against a package
// that uses NewDatabase without Main and would leak the cluster.
var (
	shared     server
	mainCalled atomic.Bool
	dbSeq      atomic.Int64
)

// Main runs the tests of a package and then stops and removes the shared
// server, if one was started. Call it from TestMain.
func Main(m *testing.M) {
	os.Exit(run(m, false))
}

// MainCheckLeaks is Main that also fails the run when goroutines outlive the
// tests (goleak), for packages whose tests must stop everything they start.
func MainCheckLeaks(m *testing.M, opts ...goleak.Option) {
	os.Exit(run(m, true, opts...))
}

func run(m *testing.M, checkLeaks bool, leakOpts ...goleak.Option) int {
	mainCalled.Store(true)
	code := m.Run()
	if checkLeaks && code == 0 {
		if err := goleak.Find(leakOpts...); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: goroutines outlived the tests: %v\n", err)
			code = 1
		}
	}
	if shared.cleanup != nil {
		if err := shared.cleanup(); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: removing the test PostgreSQL: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	if shared.err != nil && inCI() {
		code = 1
	}
	return code
}

// sharedDSN returns the shared server's superuser DSN, starting the server on
// first use; without a server it skips t (fails it under CI=true).
func sharedDSN(t testing.TB) string {
	t.Helper()
	if !mainCalled.Load() {
		t.Fatal("pgtest: call pgtest.Main(m) from the package's TestMain before using NewDatabase")
	}
	shared.once.Do(func() {
		shared.dsn, shared.cleanup, shared.err = obtainServer()
		if shared.err != nil {
			banner(shared.err)
		}
	})
	if shared.err != nil {
		unavailable(t, shared.err)
	}
	return shared.dsn
}

func obtainServer() (dsn string, cleanup func() error, err error) {
	if dsn := os.Getenv(EnvDSN); dsn != "" {
		return dsn, nil, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	local, localErr := newLocalServer(ClusterOptions{})
	if localErr == nil {
		if localErr = local.start(ctx); localErr == nil {
			return local.dsn("postgres"), local.destroy, nil
		}
		_ = local.destroy()
	}
	dsn, cleanup, dockerErr := startContainer(ctx)
	if dockerErr == nil {
		return dsn, cleanup, nil
	}
	return "", nil, fmt.Errorf("no PostgreSQL for tests: %s is not set; local cluster: %w; docker: %w", EnvDSN, localErr, dockerErr)
}

func inCI() bool { return strings.EqualFold(os.Getenv("CI"), "true") }

// unavailable skips a test that needs PostgreSQL, or fails it under CI.
func unavailable(t testing.TB, reason error) {
	t.Helper()
	if inCI() {
		t.Fatalf("pgtest: CI=true requires PostgreSQL: %v", reason)
	}
	t.Skipf("pgtest: PostgreSQL tests skipped: %v", reason)
}

func banner(reason error) {
	line := strings.Repeat("!", 78)
	fmt.Fprintf(os.Stderr, "%s\n!! pgtest: NO POSTGRESQL - tests needing it are SKIPPED\n!! %v\n!! Set %s, install PostgreSQL (initdb/postgres) or start Docker.\n%s\n",
		line, reason, EnvDSN, line)
}

// NewDatabase creates an empty database for this test on the shared server
// and returns a superuser postgres:// URL to it. The database is dropped when
// the test ends, connections still open to it included. Safe for parallel
// tests.
func NewDatabase(t testing.TB) string {
	t.Helper()
	admin := sharedDSN(t)
	name := databaseName(t.Name())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := adminExec(ctx, admin, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := adminExec(ctx, admin, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	dsn, err := withDatabase(admin, name)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return dsn
}

var nonIdent = regexp.MustCompile(`[^a-z0-9]+`)

// databaseName is unique within the server (sequence + random part, as
// several test binaries share one server) and carries the test name, so a
// leftover database says where it came from.
func databaseName(testName string) string {
	base := strings.Trim(nonIdent.ReplaceAllString(strings.ToLower(testName), "_"), "_")
	if len(base) > 30 {
		base = base[:30]
	}
	return fmt.Sprintf("pgtest_%s_%d_%s", base, dbSeq.Add(1), randomHex(4))
}

// adminExec runs one statement on its own connection. No pool: a pool keeps
// goroutines alive between tests, which goleak in the tests would report.
func adminExec(ctx context.Context, dsn, sql string) error {
	for attempt := 0; ; attempt++ {
		err := func() error {
			conn, err := pgx.Connect(ctx, dsn)
			if err != nil {
				return err
			}
			defer conn.Close(context.Background())
			_, err = conn.Exec(ctx, sql)
			return err
		}()
		var pgErr *pgconn.PgError
		// 55006: "source database template1 is being accessed by other users",
		// a transient clash between concurrent CREATE DATABASE calls.
		if err == nil || attempt >= 20 || !errors.As(err, &pgErr) || pgErr.Code != "55006" {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(50*(attempt+1)) * time.Millisecond):
		}
	}
}
