package procedure

import (
	"fmt"
	"time"
)

// Defaults used for zero Options fields. The first five are also the
// configuration's defaults of procedure.* and max_txn_ops: config.Default
// reads them, so they are stated only here.
const (
	DefaultMaxRetryTimes        = 12
	DefaultRetryDelay           = 500 * time.Millisecond
	DefaultMaxMetadataValueSize = 1500 * 1024
	DefaultMaxRunningProcedures = 128
	DefaultMaxTxnOps            = 128
	DefaultFinishedRetention    = time.Hour
	DefaultKeyPrefix            = "__procedure__/"
	DefaultGCInterval           = time.Minute
	DefaultPausePollInterval    = 5 * time.Second
	DefaultWaitPollInterval     = 500 * time.Millisecond
	// maxRetryDelay caps the exponential backoff, so a long outage of the
	// store does not leave a procedure sleeping for hours once it is back.
	maxRetryDelay = time.Minute
)

// Options configure a Manager. Zero fields take the defaults above.
type Options struct {
	// MaxRetryTimes is how many times a failing step (or rollback) is retried
	// before the procedure rolls back (or fails). Negative means no retry.
	MaxRetryTimes int
	// RetryDelay is the first retry's delay; it doubles on each attempt, with
	// jitter, up to one minute.
	RetryDelay time.Duration
	// MaxMetadataValueSize is the largest value written to the store; larger
	// procedure state is split into segments of this size.
	MaxMetadataValueSize int
	// MaxRunningProcedures caps the unfinished procedures this manager drives
	// (including those waiting for a lock); Submit beyond it is refused.
	// Procedures resumed at Start are never refused, so after a leader change
	// they may exceed it until enough of them finish.
	MaxRunningProcedures int
	// MaxTxnOps is the store's max_txn_ops: a procedure's state must fit in
	// one transaction, so it bounds the number of segments.
	MaxTxnOps int
	// FinishedRetention is how long a finished procedure's record is kept.
	FinishedRetention time.Duration
	// KeyPrefix is the prefix of every key the manager writes but the pause
	// switch, which is GreptimeDB's __switches/pause_procedure.
	KeyPrefix string
	// GCInterval is how often finished procedures are collected.
	GCInterval time.Duration
	// PausePollInterval is how often the pause switch is re-read from the
	// store, to notice a switch written by another client.
	PausePollInterval time.Duration
	// WaitPollInterval is how often Wait re-reads a procedure that this
	// manager does not drive.
	WaitPollInterval time.Duration
	// Now is the clock for timestamps and retention; tests inject one.
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.MaxRetryTimes == 0 {
		o.MaxRetryTimes = DefaultMaxRetryTimes
	}
	if o.MaxRetryTimes < 0 {
		o.MaxRetryTimes = 0
	}
	if o.RetryDelay <= 0 {
		o.RetryDelay = DefaultRetryDelay
	}
	if o.MaxMetadataValueSize <= 0 {
		o.MaxMetadataValueSize = DefaultMaxMetadataValueSize
	}
	if o.MaxRunningProcedures <= 0 {
		o.MaxRunningProcedures = DefaultMaxRunningProcedures
	}
	if o.MaxTxnOps <= 0 {
		o.MaxTxnOps = DefaultMaxTxnOps
	}
	if o.FinishedRetention <= 0 {
		o.FinishedRetention = DefaultFinishedRetention
	}
	if o.KeyPrefix == "" {
		o.KeyPrefix = DefaultKeyPrefix
	}
	if o.GCInterval <= 0 {
		o.GCInterval = DefaultGCInterval
	}
	if o.PausePollInterval <= 0 {
		o.PausePollInterval = DefaultPausePollInterval
	}
	if o.WaitPollInterval <= 0 {
		o.WaitPollInterval = DefaultWaitPollInterval
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// MaxStateSize is the largest procedure state (Dump output) the options allow:
// one transaction holds the record plus at most MaxTxnOps-1 segments.
func (o Options) MaxStateSize() int {
	o = o.withDefaults()
	return (o.MaxTxnOps - 1) * o.MaxMetadataValueSize
}

func (o Options) validate() error {
	if o.MaxTxnOps < 2 {
		return fmt.Errorf("procedure: max_txn_ops must be at least 2 (one record and one segment), got %d", o.MaxTxnOps)
	}
	if o.MaxMetadataValueSize < 1024 {
		return fmt.Errorf("procedure: max_metadata_value_size must be at least 1KiB to hold a procedure record, got %d bytes", o.MaxMetadataValueSize)
	}
	return nil
}
