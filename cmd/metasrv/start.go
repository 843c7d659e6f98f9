package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/pgmetasrv/metasrv/pkg/config"
	"github.com/pgmetasrv/metasrv/pkg/memlimit"
	"github.com/pgmetasrv/metasrv/pkg/node"
)

// shutdownTimeout bounds the graceful part of a shutdown (resign, stop leader
// work, drain calls) before the process stops hard.
const shutdownTimeout = 30 * time.Second

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
	log := base.With("component", "main")
	// The process's memory limit follows its live heap (package memlimit):
	// the leader's cache is most of it, and would otherwise double between
	// collections.
	mem, err := memlimit.New(memlimit.Options{Logger: base})
	if err != nil {
		return err
	}
	if err := mem.Start(ctx); err != nil {
		return err
	}
	defer mem.Stop()
	b := currentBuild()
	n, err := node.New(ctx, node.Config{Options: o, Logger: base, Version: b.Version, Commit: b.Commit})
	if err != nil {
		return err
	}
	// Stop is safe twice: this one only acts when Start or the wait failed.
	defer func() { _ = n.Stop(context.Background()) }()
	if err := n.Start(ctx); err != nil {
		return err
	}
	log.Info("metasrv running",
		"version", version,
		"backend", o.Backend,
		"grpc_addr", n.GRPCAddr().String(),
		"server_addr", n.Advertised(),
		"http_addr", n.HTTPAddr().String())

	var failed error
	select {
	case <-ctx.Done():
		log.Info("shutting down", "cause", context.Cause(ctx).Error())
	case failed = <-n.Err():
		log.Error("a server failed; shutting down", "err", failed)
	}
	release()
	stopCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := n.Stop(stopCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return failed
}
