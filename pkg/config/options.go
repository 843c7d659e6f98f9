// Package config holds metasrv's Options: their defaults, loading from the
// layered sources (defaults < TOML file < METASRV_ environment < flags),
// validation, and a sanitised rendering that never shows a password.
//
// Keys follow GreptimeDB's MetasrvOptions in snake_case so that an operator of
// GreptimeDB recognises them.
package config

import (
	"time"

	"github.com/pgmetasrv/metasrv/pkg/kv/memkv"
	"github.com/pgmetasrv/metasrv/pkg/kv/pgkv"
	"github.com/pgmetasrv/metasrv/pkg/postgres"
	"github.com/pgmetasrv/metasrv/pkg/procedure"
	"github.com/pgmetasrv/metasrv/pkg/selector"
)

// Backend names accepted by the `backend` key.
const (
	BackendMemory   = memkv.Name
	BackendPostgres = pgkv.Name
)

// Options is the whole configuration of one metasrv process.
type Options struct {
	// StoreAddrs are the PostgreSQL addresses (URLs or key=value DSNs). Several
	// entries name the hosts of one cluster; the writable one is used.
	StoreAddrs []string `koanf:"store_addrs"`
	// Backend is memory_store or postgres_store.
	Backend string `koanf:"backend"`
	// MetaSchemaName is the PostgreSQL schema of the metadata table; empty
	// leaves it to the connection's search_path.
	MetaSchemaName string `koanf:"meta_schema_name"`
	// MetaTableName is the metadata table (k bytea PRIMARY KEY, v bytea).
	MetaTableName string `koanf:"meta_table_name"`
	// MetaElectionLockID is the advisory lock key of the leader election.
	MetaElectionLockID int64 `koanf:"meta_election_lock_id"`
	// StoreKeyPrefix is prepended to every key, so several clusters can share a table.
	StoreKeyPrefix string `koanf:"store_key_prefix"`
	// MaxTxnOps caps the operations of one transaction.
	MaxTxnOps int `koanf:"max_txn_ops"`
	// MaxKeySize caps a key's size; with store_key_prefix at most 2692 bytes (PostgreSQL's B-tree limit).
	MaxKeySize ByteSize `koanf:"max_key_size"`
	// NodeMaxIdleTime is how long an idle node's in-memory entries are kept.
	NodeMaxIdleTime time.Duration `koanf:"node_max_idle_time"`
	// HeartbeatInterval is the base interval GreptimeDB nodes are told to
	// heartbeat at (datanodes and flownodes every interval, frontends every
	// six); GreptimeDB's heartbeat_interval.
	HeartbeatInterval time.Duration `koanf:"heartbeat_interval"`
	// Selector picks the datanodes of new regions: round_robin (default),
	// lease_based or load_based (GreptimeDB's SelectorType, whose variant
	// names RoundRobin, LeaseBased and LoadBased are accepted too).
	Selector string `koanf:"selector"`
	// EnableRegionFailover moves the leader regions of a datanode the
	// failure detector judges failed to live datanodes.
	EnableRegionFailover bool `koanf:"enable_region_failover"`
	// RegionFailureDetectorInitializationDelay is how long a new leader
	// waits before it watches every leader region of the routes, so that
	// datanodes still starting are not failed over.
	RegionFailureDetectorInitializationDelay time.Duration `koanf:"region_failure_detector_initialization_delay"`
	// AllowRegionFailoverOnLocalWAL lets region failover run although the
	// WAL is local (see RemoteWAL): a failover then loses what the failed
	// datanode had not flushed.
	AllowRegionFailoverOnLocalWAL bool `koanf:"allow_region_failover_on_local_wal"`

	Procedure  ProcedureOptions  `koanf:"procedure"`
	GRPC       GRPCOptions       `koanf:"grpc"`
	HTTP       HTTPOptions       `koanf:"http"`
	BackendTLS BackendTLSOptions `koanf:"backend_tls"`
	Postgres   PostgresOptions   `koanf:"postgres"`
	Election   ElectionOptions   `koanf:"election"`
	Logging    LoggingOptions    `koanf:"logging"`

	FailureDetector FailureDetectorOptions `koanf:"failure_detector"`
}

// FailureDetectorOptions configure the phi-accrual failure detector of
// every (datanode, region) (GreptimeDB's PhiAccrualFailureDetectorOptions).
type FailureDetectorOptions struct {
	// Threshold is the phi from which a region counts as failed.
	Threshold float64 `koanf:"threshold"`
	// MinStdDeviation is the least standard deviation of the heartbeat
	// intervals phi is computed with.
	MinStdDeviation time.Duration `koanf:"min_std_deviation"`
	// AcceptableHeartbeatPause is added to the mean heartbeat interval
	// before phi rises.
	AcceptableHeartbeatPause time.Duration `koanf:"acceptable_heartbeat_pause"`
	// FirstHeartbeatEstimate seeds a new detector's history (GreptimeDB
	// before v0.18 read it; v1.1.4 fixes it at 1s).
	FirstHeartbeatEstimate time.Duration `koanf:"first_heartbeat_estimate"`
}

// RemoteWAL reports whether the datanodes' WAL is remote (Kafka), which is
// what makes a failover lossless. GreptimeDB's metasrv decides it from its
// wal.provider (raft_engine unless set to kafka); this metasrv refuses the
// wal table, so the provider is always GreptimeDB's default, raft_engine:
// the WAL is local.
func (o Options) RemoteWAL() bool { return false }

// ProcedureOptions configure the durable procedure manager.
type ProcedureOptions struct {
	MaxRetryTimes        int           `koanf:"max_retry_times"`
	RetryDelay           time.Duration `koanf:"retry_delay"`
	MaxMetadataValueSize ByteSize      `koanf:"max_metadata_value_size"`
	MaxRunningProcedures int           `koanf:"max_running_procedures"`
}

// GRPCOptions configure the gRPC server.
type GRPCOptions struct {
	// BindAddr is where the server listens.
	BindAddr string `koanf:"bind_addr"`
	// ServerAddr is the address advertised to clients and peers; empty means
	// derived from BindAddr.
	ServerAddr string `koanf:"server_addr"`
	// TLS turns on TLS for gRPC; with a CA, every client must present a
	// certificate it signed.
	TLS ServerTLSOptions `koanf:"tls"`
	// MaxRecvMessageSize caps one request message; larger ones are refused
	// with RESOURCE_EXHAUSTED before they are decoded.
	MaxRecvMessageSize ByteSize `koanf:"max_recv_message_size"`
	// MaxSendMessageSize caps one response message.
	MaxSendMessageSize ByteSize `koanf:"max_send_message_size"`
}

// HTTPOptions configure the HTTP admin server.
type HTTPOptions struct {
	Addr string `koanf:"addr"`
	// TLS turns on HTTPS; with a CA, client certificates are verified when
	// presented, and a verified one authorises the admin POST endpoints.
	TLS ServerTLSOptions `koanf:"tls"`
	// AdminToken, when set, is the bearer token every admin POST must carry
	// (unless the client presented a verified certificate). Never rendered.
	AdminToken string `koanf:"admin_token"`
	// BodyLimit caps a request body; larger ones get 413.
	BodyLimit ByteSize `koanf:"body_limit"`
}

// ServerTLSOptions are the files of a server's TLS identity. An empty
// CertPath (and KeyPath) means plaintext.
type ServerTLSOptions struct {
	CertPath string `koanf:"cert_path"`
	KeyPath  string `koanf:"key_path"`
	// CACertPath holds the CA certificates that client certificates must
	// chain to; empty means clients are not asked for one.
	CACertPath string `koanf:"ca_cert_path"`
}

// Enabled reports whether TLS is configured.
func (t ServerTLSOptions) Enabled() bool { return t.CertPath != "" }

// BackendTLSOptions configure TLS to PostgreSQL. An empty Mode leaves TLS to
// the store address (its sslmode), as libpq would; the modes are
// postgres.TLSDisable ... postgres.TLSVerifyFull.
type BackendTLSOptions struct {
	Mode       string `koanf:"mode"`
	CACertPath string `koanf:"ca_cert_path"`
	CertPath   string `koanf:"cert_path"`
	KeyPath    string `koanf:"key_path"`
}

// PostgresOptions tune the connection pool of postgres_store.
type PostgresOptions struct {
	MaxConns        int           `koanf:"max_conns"`
	MinConns        int           `koanf:"min_conns"`
	MaxConnLifetime time.Duration `koanf:"max_conn_lifetime"`
	MaxConnIdleTime time.Duration `koanf:"max_conn_idle_time"`
	ConnectTimeout  time.Duration `koanf:"connect_timeout"`
}

// ElectionOptions configure the PostgreSQL leader election.
type ElectionOptions struct {
	// Lease is how long a leader's claim lasts without renewal; at least
	// MinElectionLease.
	Lease time.Duration `koanf:"lease"`
	// CampaignInterval is how often a follower tries the lock.
	CampaignInterval time.Duration `koanf:"campaign_interval"`
	// CandidateLease is how long a node's registration lasts without renewal.
	CandidateLease time.Duration `koanf:"candidate_lease"`
}

// LoggingOptions configure log/slog.
type LoggingOptions struct {
	// Level is debug, info, warn or error.
	Level string `koanf:"level"`
	// Format is text or json.
	Format string `koanf:"format"`
}

// Default returns the built-in defaults, the lowest configuration layer.
func Default() Options {
	return Options{
		StoreAddrs:         []string{"postgres://127.0.0.1:5432/postgres"},
		Backend:            BackendMemory,
		MetaTableName:      pgkv.DefaultTable,
		MetaElectionLockID: 1,
		MaxTxnOps:          procedure.DefaultMaxTxnOps,
		MaxKeySize:         2 * KiB,
		NodeMaxIdleTime:    24 * time.Hour,
		HeartbeatInterval:  3 * time.Second,
		Selector:           string(selector.DefaultKind),
		// GreptimeDB v1.1.4's MetasrvOptions defaults.
		EnableRegionFailover:                     false,
		RegionFailureDetectorInitializationDelay: 10 * time.Minute,
		AllowRegionFailoverOnLocalWAL:            false,
		FailureDetector: FailureDetectorOptions{
			// GreptimeDB's PhiAccrualFailureDetectorOptions::default
			// (failure_detector.rs:74-84), as pkg/region's defaults.
			Threshold:                8,
			MinStdDeviation:          100 * time.Millisecond,
			AcceptableHeartbeatPause: 10 * time.Second,
			FirstHeartbeatEstimate:   time.Second,
		},
		Procedure: ProcedureOptions{
			MaxRetryTimes:        procedure.DefaultMaxRetryTimes,
			RetryDelay:           procedure.DefaultRetryDelay,
			MaxMetadataValueSize: procedure.DefaultMaxMetadataValueSize,
			MaxRunningProcedures: procedure.DefaultMaxRunningProcedures,
		},
		GRPC: GRPCOptions{
			BindAddr:           "127.0.0.1:3002",
			MaxRecvMessageSize: 16 * MiB,
			MaxSendMessageSize: 64 * MiB,
		},
		HTTP: HTTPOptions{Addr: "127.0.0.1:4000", BodyLimit: 1 * MiB},
		Postgres: PostgresOptions{
			MaxConns:        32,
			MinConns:        2,
			MaxConnLifetime: time.Hour,
			MaxConnIdleTime: 10 * time.Minute,
			ConnectTimeout:  5 * time.Second,
		},
		Election: ElectionOptions{
			Lease:            3 * time.Second,
			CampaignInterval: 250 * time.Millisecond,
			CandidateLease:   10 * time.Second,
		},
		Logging: LoggingOptions{Level: "info", Format: "text"},
	}
}

// Store is what pkg/postgres needs to reach the store: store_addrs,
// backend_tls and the postgres.* pool settings.
func (o Options) Store() postgres.Options {
	t := o.BackendTLS
	p := o.Postgres
	return postgres.Options{
		StoreAddrs:      o.StoreAddrs,
		TLS:             postgres.TLSOptions{Mode: t.Mode, CACertPath: t.CACertPath, CertPath: t.CertPath, KeyPath: t.KeyPath},
		MaxConns:        p.MaxConns,
		MinConns:        p.MinConns,
		MaxConnLifetime: p.MaxConnLifetime,
		MaxConnIdleTime: p.MaxConnIdleTime,
		ConnectTimeout:  p.ConnectTimeout,
	}
}
