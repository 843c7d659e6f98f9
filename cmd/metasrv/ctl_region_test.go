package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
	"github.com/pgmetasrv/metasrv/pkg/migration"
	"github.com/pgmetasrv/metasrv/pkg/procedure"
	"github.com/pgmetasrv/metasrv/pkg/server/apierr"
	"github.com/pgmetasrv/metasrv/pkg/server/metasrvapi"
	"github.com/pgmetasrv/metasrv/pkg/statuscode"
)

// fakeMigrate is ProcedureService/migrate: it records the request and
// answers with an echo procedure it submits, so --wait has one to wait for.
type fakeMigrate struct {
	metapb.UnimplementedProcedureServiceServer
	procs *procedure.Manager

	mu  sync.Mutex
	got []*metapb.MigrateRegionRequest
	err error
}

func (f *fakeMigrate) Migrate(ctx context.Context, req *metapb.MigrateRegionRequest) (*metapb.MigrateRegionResponse, error) {
	f.mu.Lock()
	f.got = append(f.got, req)
	err := f.err
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	id, err := f.procs.Submit(ctx, echoType, []byte(`{"migrated":true}`))
	if err != nil {
		return nil, err
	}
	return &metapb.MigrateRegionResponse{Pid: &metapb.ProcedureId{Key: []byte(id)}}, nil
}

func (f *fakeMigrate) requests() []*metapb.MigrateRegionRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*metapb.MigrateRegionRequest(nil), f.got...)
}

// migrateCluster is one leader serving metasrv.v1 (for ctl's leader
// discovery and procedure wait) and the fake migrate; procedures of the
// migration type submitted there stay parked until the test ends.
func migrateCluster(t *testing.T) (*ctlCluster, *fakeMigrate) {
	t.Helper()
	tc := newCtlCluster(t, 0)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	logger := slog.New(slog.DiscardHandler)
	n := &ctlNode{cluster: tc, addr: lis.Addr().String(), done: make(chan struct{})}
	n.procs = procedure.New(procedure.Options{RetryDelay: 10 * time.Millisecond, WaitPollInterval: 10 * time.Millisecond}, logger)
	require.NoError(t, n.procs.RegisterLoader(echoType, loadEcho))
	release := make(chan struct{})
	require.NoError(t, n.procs.RegisterLoader(migration.TypeName, func(data []byte) (procedure.Procedure, error) {
		return &parkedMigration{data: data, release: release}, nil
	}))
	n.srv = grpc.NewServer(grpc.ChainUnaryInterceptor(apierr.UnaryServerInterceptor(logger)))
	metasrvapi.Register(n.srv, metasrvapi.Deps{Core: n, Elector: n, Procedures: n.procs})
	fake := &fakeMigrate{procs: n.procs}
	metapb.RegisterProcedureServiceServer(n.srv, fake)
	go func() {
		defer close(n.done)
		_ = n.srv.Serve(lis)
	}()
	t.Cleanup(func() {
		n.srv.Stop()
		<-n.done
	})
	t.Cleanup(n.procs.Stop)
	t.Cleanup(func() { close(release) })
	tc.nodes = append(tc.nodes, n)
	tc.elect(0)
	return tc, fake
}

func TestCtlRegionMigrate(t *testing.T) {
	t.Parallel()
	tc, fake := migrateCluster(t)
	ep := tc.endpoints(0)

	out := ctlEnv(t, nil, "ctl", "--endpoints", ep, "region", "migrate", "1024/1", "--from", "1", "--to", "2").ok(t).stdout
	require.Regexp(t, `^migration of region 4398046511105\(1024, 1\) from datanode 1 to datanode 2 submitted: procedure [0-9a-f-]{36}\n$`, out)
	got := fake.requests()
	require.Len(t, got, 1)
	require.EqualValues(t, 4398046511105, got[0].GetRegionId())
	require.EqualValues(t, 1, got[0].GetFromPeer())
	require.EqualValues(t, 2, got[0].GetToPeer())
	require.EqualValues(t, 300, got[0].GetTimeoutSecs(), "GreptimeDB's migrate_region default")
	require.NotNil(t, got[0].GetHeader())

	out = ctlEnv(t, nil, "ctl", "--endpoints", ep, "-o", "json", "region", "migrate", "4398046511105", "--from", "1", "--to", "2", "--timeout", "60s", "--wait").ok(t).stdout
	var p struct {
		ID     string          `json:"id"`
		State  string          `json:"state"`
		Output json.RawMessage `json:"output"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &p))
	require.Equal(t, "done", p.State)
	require.EqualValues(t, 60, fake.requests()[1].GetTimeoutSecs())

	fake.mu.Lock()
	fake.err = statuscode.Errorf(statuscode.Unexpected, "The region migration procedure is completed for region: 4398046511105(1024, 1), target_peer: 2")
	fake.mu.Unlock()
	ctlEnv(t, nil, "ctl", "--endpoints", ep, "region", "migrate", "1024/1", "--from", "1", "--to", "2").
		fails(t, "region migrate: ").fails(t, "The region migration procedure is completed for region: 4398046511105(1024, 1), target_peer: 2")
}

func TestCtlRegionMigrateRefusesBadArguments(t *testing.T) {
	t.Parallel()
	for want, args := range map[string][]string{
		`REGION "x": expected a region id or TABLE_ID/REGION_NUMBER`: {"x", "--from", "1", "--to", "2"},
		`REGION "1024/y": expected TABLE_ID/REGION_NUMBER`:           {"1024/y", "--from", "1", "--to", "2"},
		`--from and --to are both datanode 1`:                        {"1", "--from", "1", "--to", "1"},
		`--timeout 1.5s: expected whole seconds, at least 1s`:        {"1", "--from", "1", "--to", "2", "--timeout", "1.5s"},
		`required flag(s) "to" not set`:                              {"1", "--from", "1"},
	} {
		ctlEnv(t, nil, append([]string{"ctl", "--endpoints", "127.0.0.1:1", "region", "migrate"}, args...)...).fails(t, want)
	}
}

// parkedMigration is a procedure of the migration type that stays at its
// first step until the test ends, with a migration's persisted state.
type parkedMigration struct {
	data    json.RawMessage
	release <-chan struct{}
}

func (p *parkedMigration) Type() string                                       { return migration.TypeName }
func (p *parkedMigration) Dump() ([]byte, error)                              { return p.data, nil }
func (p *parkedMigration) LockKeys() []procedure.LockKey                      { return nil }
func (p *parkedMigration) Rollback(context.Context, *procedure.Context) error { return nil }
func (p *parkedMigration) Execute(ctx context.Context, _ *procedure.Context) (procedure.Status, error) {
	select {
	case <-p.release:
		return procedure.Done(nil), nil
	case <-ctx.Done():
		return procedure.Status{}, ctx.Err()
	}
}

// region migrations lists the unfinished migrations from their persisted
// state: the region, its datanodes, its step and its trigger; a finished
// one is not listed.
func TestCtlRegionMigrations(t *testing.T) {
	t.Parallel()
	tc, fake := migrateCluster(t)
	state := `{"state":"downgrade_leader_region","catalog":"greptime","schema":"public","region_id":4398046511105,` +
		`"from_peer":{"id":1,"addr":"dn1:4001"},"to_peer":{"id":2,"addr":"dn2:4001"},"timeout_ms":120000,"trigger_reason":"Failover"}`
	id, err := fake.procs.Submit(t.Context(), migration.TypeName, []byte(state))
	require.NoError(t, err)
	_, err = fake.procs.Submit(t.Context(), echoType, []byte(`{}`)) // another type: not listed
	require.NoError(t, err)
	ep := tc.endpoints(0)

	out := ctlEnv(t, nil, "ctl", "--endpoints", ep, "region", "migrations").ok(t).stdout
	require.Regexp(t, `^PROCEDURE\s+STATE\s+REGION\s+FROM\s+TO\s+STEP\s+REASON\s+SUBMITTED\s+ERROR\n`+
		string(id)+`\s+running\s+4398046511105\(1024, 1\)\s+1\s+2\s+downgrade_leader_region\s+Failover\s+\S+\s+-\n$`, out)

	out = ctlEnv(t, nil, "ctl", "--endpoints", ep, "-o", "json", "region", "migrations").ok(t).stdout
	var got struct {
		Migrations []map[string]any `json:"migrations"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &got))
	require.Len(t, got.Migrations, 1)
	m := got.Migrations[0]
	require.Equal(t, string(id), m["procedure_id"])
	require.EqualValues(t, 1024, m["table_id"])
	require.EqualValues(t, 4398046511105, m["region_id"])
	require.EqualValues(t, 120000, m["timeout_ms"])
	require.Equal(t, "Failover", m["trigger_reason"])
}
