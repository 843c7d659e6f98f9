package regionfailoverbench

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/pgmetasrv/metasrv/pkg/region"
)

// Defaults of the command's flags.
const (
	DefaultRounds    = 20
	DefaultRegions   = 100
	DefaultDatanodes = 3
)

// victimID is the datanode stopped in every round.
const victimID = 1

// Config describes a run.
type Config struct {
	// Endpoints are the cluster's metasrv gRPC addresses.
	Endpoints []string
	// Catalog and Schema are where the tables are made; the run creates
	// the schema (it must not exist) and drops it at the end.
	Catalog, Schema string
	// Rounds is how many times a victim is stopped.
	Rounds int
	// Regions is how many leader regions the victim has in each round.
	Regions int
	// Datanodes is how many fake datanodes run, the victim included (at
	// least 2: its regions need somewhere to go).
	Datanodes int
	// DatanodeHost is the address the datanodes' region servers bind (on a
	// free port each) and advertise: the metasrv must reach it.
	DatanodeHost string
	// Detector is the metasrv's failure_detector options, which the floor
	// of each round is computed with.
	Detector region.PhiAccrualOptions
	// LeaseTimeout bounds the wait for a datanode's first region lease,
	// and for the lease that grants the victim a new table's regions.
	LeaseTimeout time.Duration
	// RoundTimeout bounds the wait, from the victim's stop, for every one
	// of its regions to be granted Leader elsewhere.
	RoundTimeout time.Duration
	// Timeout bounds one DDL call or metadata read (its timeout_secs too).
	Timeout time.Duration
	// Compressor is the grpc-encoding of every request ("zstd" as
	// GreptimeDB's; registered by package grpczstd).
	Compressor string
	// Progress gets a line per round; nil discards.
	Progress io.Writer
	// Logger gets the fake datanodes' logs; nil discards.
	Logger *slog.Logger
}

func (c *Config) check() error {
	var problems []string
	if len(c.Endpoints) == 0 {
		problems = append(problems, "no endpoints")
	}
	if c.Catalog == "" || c.Schema == "" {
		problems = append(problems, "Catalog and Schema must be set")
	}
	if c.Rounds < 1 || c.Regions < 1 {
		problems = append(problems, fmt.Sprintf("Rounds %d and Regions %d must be at least 1", c.Rounds, c.Regions))
	}
	if c.Datanodes < 2 {
		problems = append(problems, fmt.Sprintf("Datanodes %d must be at least 2", c.Datanodes))
	}
	if c.LeaseTimeout <= 0 || c.RoundTimeout <= 0 || c.Timeout <= 0 {
		problems = append(problems, "LeaseTimeout, RoundTimeout and Timeout must be positive")
	}
	if c.DatanodeHost == "" {
		problems = append(problems, "no DatanodeHost")
	}
	if err := c.Detector.Validate(); err != nil {
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		return errors.New("regionfailoverbench: " + strings.Join(problems, "; "))
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.Logger = c.Logger.With("component", "regionfailoverbench")
	return nil
}

// partitions is the partitions of each round's table: with every datanode
// alive, round_robin places Regions of them on each.
func (c *Config) partitions() int { return c.Datanodes * c.Regions }
