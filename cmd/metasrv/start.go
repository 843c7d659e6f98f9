package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/pgmetasrv/metasrv/pkg/config"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/kv/memkv"
	"github.com/pgmetasrv/metasrv/pkg/server"
)

func newStartCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "start",
		Short: "Run the metadata server until SIGINT or SIGTERM",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o, err := a.loadOptions(cmd)
			if err != nil {
				return err
			}
			log, err := config.NewLogger(a.stderr, o.Logging)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runStart(ctx, stop, o, log)
		},
	}
	config.AddFlags(cmd.Flags())
	return cmd
}

// runStart serves until ctx ends (a signal) or a server fails, then shuts
// down gracefully. It calls release once shutdown begins, so that a second
// signal kills the process at once instead of waiting for the graceful stop.
func runStart(ctx context.Context, release func(), o config.Options, base *slog.Logger) error {
	log := base.With("component", "metasrv")
	b, err := newBackend(ctx, o, log)
	if err != nil {
		return err
	}
	srv := server.New(server.Options{
		GRPCAddr: o.GRPC.BindAddr,
		HTTPAddr: o.HTTP.Addr,
		Logger:   base,
	})
	if err := srv.Start(ctx); err != nil {
		return err
	}
	defer srv.Stop()
	// memory_store has no election: its single node leads from the start.
	srv.SetLeader(b.alwaysLeader)

	log.Info("metasrv started",
		"version", version,
		"backend", b.store.Name(),
		"grpc_addr", srv.GRPCAddr().String(),
		"http_addr", srv.HTTPAddr().String())

	select {
	case <-ctx.Done():
		release()
		log.Info("shutting down", "cause", context.Cause(ctx).Error())
		return nil
	case err := <-srv.Failed():
		release()
		return err
	}
}

// backend is the metadata store the configuration chose.
type backend struct {
	store kv.Backend
	// alwaysLeader is set for a store without election (memory_store).
	alwaysLeader bool
}

// errPostgresNotBuilt is returned for postgres_store until its backend is wired in.
var errPostgresNotBuilt = errors.New("postgres_store backend is not available in this build yet")

// newBackend opens the configured store, with the request limits and the
// store_key_prefix chroot applied.
func newBackend(_ context.Context, o config.Options, log *slog.Logger) (backend, error) {
	var store kv.Backend
	alwaysLeader := false
	switch o.Backend {
	case config.BackendMemory:
		log.Warn("memory_store keeps metadata in this process only and has no leader election: run exactly one instance, and expect to lose all metadata when it stops")
		store = memkv.New()
		alwaysLeader = true
	case config.BackendPostgres:
		return backend{}, errPostgresNotBuilt
	default:
		return backend{}, fmt.Errorf("unknown backend %q", o.Backend)
	}
	if o.StoreKeyPrefix != "" {
		store = kv.WithPrefix(store, []byte(o.StoreKeyPrefix))
	}
	// Limits go outermost so they judge the caller's keys (an empty key is
	// refused even though the prefix would make it non-empty).
	store = kv.WithLimits(store, kv.Limits{
		MaxTxnOps:    o.MaxTxnOps,
		MaxValueSize: int(o.Procedure.MaxMetadataValueSize),
	})
	return backend{store: store, alwaysLeader: alwaysLeader}, nil
}
