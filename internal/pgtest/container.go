package pgtest

import (
	"context"
	"fmt"

	"github.com/testcontainers/testcontainers-go"
	tcpostgres "github.com/testcontainers/testcontainers-go/modules/postgres"
)

const containerImage = "postgres:15-alpine"

// startContainer runs PostgreSQL in Docker through testcontainers-go, when a
// Docker engine answers.
func startContainer(ctx context.Context) (dsn string, cleanup func() error, err error) {
	defer func() {
		// testcontainers can panic when no Docker host is configured at all.
		if r := recover(); r != nil {
			err = fmt.Errorf("docker unavailable: %v", r)
		}
	}()
	provider, err := testcontainers.NewDockerProvider()
	if err != nil {
		return "", nil, fmt.Errorf("docker unavailable: %w", err)
	}
	if err := provider.Health(ctx); err != nil {
		return "", nil, fmt.Errorf("docker engine does not answer: %w", err)
	}
	args := []string{"postgres"}
	for _, s := range speedSettings {
		args = append(args, "-c", s)
	}
	ctr, err := tcpostgres.Run(ctx, containerImage,
		testcontainers.WithCmd(args...),
		tcpostgres.BasicWaitStrategies(),
	)
	if err != nil {
		if ctr != nil {
			_ = testcontainers.TerminateContainer(ctr)
		}
		return "", nil, fmt.Errorf("start %s container: %w", containerImage, err)
	}
	dsn, err = ctr.ConnectionString(ctx, "sslmode=disable")
	if err != nil {
		_ = testcontainers.TerminateContainer(ctr)
		return "", nil, fmt.Errorf("container DSN: %w", err)
	}
	return dsn, func() error { return testcontainers.TerminateContainer(ctr) }, nil
}
