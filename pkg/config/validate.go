package config

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/pgmetasrv/metasrv/pkg/postgres"
	"github.com/pgmetasrv/metasrv/pkg/selector"
)

// Validate checks o without side effects and returns the first problem as one
// line naming the key and what was expected.
func (o Options) Validate() error {
	checks := []func(Options) error{
		validateStore, validateLimits, validateAddrs, validateTLS,
		validateServerTLS, validateServerLimits, validateAdminToken, validatePostgres, validateElection, validateLogging,
		validateSelector, validateFailover,
	}
	for _, c := range checks {
		if err := c(o); err != nil {
			return err
		}
	}
	return nil
}

func invalid(key, format string, args ...any) error {
	return &Error{Key: key, kind: ErrInvalidValue, msg: key + ": " + fmt.Sprintf(format, args...)}
}

func validateStore(o Options) error {
	switch o.Backend {
	case BackendMemory, BackendPostgres:
	default:
		return invalid("backend", "unknown backend %q (expected %s or %s)", o.Backend, BackendMemory, BackendPostgres)
	}
	if o.Backend == BackendPostgres && len(o.StoreAddrs) == 0 {
		return invalid("store_addrs", "is empty; postgres_store needs at least one PostgreSQL address")
	}
	for i, a := range o.StoreAddrs {
		if strings.TrimSpace(a) == "" {
			return invalid("store_addrs", "entry %d is empty", i)
		}
		if _, err := postgres.ParseStoreAddr(a); err != nil {
			// The message is the key with its index, never the address.
			return &Error{Key: "store_addrs", kind: ErrInvalidValue, msg: fmt.Sprintf("store_addrs[%d]: %v", i, err)}
		}
	}
	if err := postgres.ValidIdentifier(o.MetaTableName); err != nil {
		return invalid("meta_table_name", "%v", err)
	}
	if len(o.MetaTableName) > MaxMetaTableNameLen {
		return invalid("meta_table_name", "%q is %d bytes; at most %d, so the tables named after it (%q) fit PostgreSQL's 63-byte identifiers",
			o.MetaTableName, len(o.MetaTableName), MaxMetaTableNameLen, o.MetaTableName+"_election_candidates")
	}
	if o.MetaSchemaName != "" {
		if err := postgres.ValidIdentifier(o.MetaSchemaName); err != nil {
			return invalid("meta_schema_name", "%v", err)
		}
	}
	return nil
}

// MaxMetaTableNameLen leaves room for the longest suffix of the tables named
// after the meta table ("_election_candidates", 20 bytes).
const MaxMetaTableNameLen = postgres.MaxIdentifierLen - len("_election_candidates")

// minMetadataValueSize is the length of {"ttl":null,"extra_options":{}}.
const minMetadataValueSize = 31

func validateLimits(o Options) error {
	positive := []struct {
		key string
		v   int64
	}{
		{"max_txn_ops", int64(o.MaxTxnOps)},
		{"max_key_size", int64(o.MaxKeySize)},
		{"node_max_idle_time", int64(o.NodeMaxIdleTime)},
		{"procedure.max_retry_times", int64(o.Procedure.MaxRetryTimes)},
		{"procedure.retry_delay", int64(o.Procedure.RetryDelay)},
		{"procedure.max_metadata_value_size", int64(o.Procedure.MaxMetadataValueSize)},
		{"procedure.max_running_procedures", int64(o.Procedure.MaxRunningProcedures)},
	}
	for _, p := range positive {
		if p.v <= 0 {
			return invalid(p.key, "must be greater than 0, got %s", formatValue(o, p.key))
		}
	}
	// The leader writes GreptimeDB's default schema value (31 bytes) at the
	// start of every term; a limit below it would keep the leader from ever
	// becoming ready.
	if o.Procedure.MaxMetadataValueSize > 0 && o.Procedure.MaxMetadataValueSize < minMetadataValueSize {
		return invalid("procedure.max_metadata_value_size", "must be at least %dB, the size of the default schema metadata the leader writes, got %s", int(minMetadataValueSize), formatValue(o, "procedure.max_metadata_value_size"))
	}
	if o.HeartbeatInterval < 100*time.Millisecond {
		return invalid("heartbeat_interval", "must be at least 100ms, got %s", formatValue(o, "heartbeat_interval"))
	}
	if n := int64(o.MaxKeySize) + int64(len(o.StoreKeyPrefix)); n > 2692 { // kv.MaxStoredKeySize
		return invalid("max_key_size", "%s plus the %d bytes of store_key_prefix is %d bytes, over the 2692 bytes PostgreSQL's B-tree index always accepts", formatValue(o, "max_key_size"), len(o.StoreKeyPrefix), n)
	}
	return nil
}

func validateSelector(o Options) error {
	if _, err := selector.ParseKind(o.Selector); err != nil {
		return invalid("selector", "unknown selector %q (expected %s, %s or %s)",
			o.Selector, selector.KindRoundRobin, selector.KindLeaseBased, selector.KindLoadBased)
	}
	return nil
}

func validateAddrs(o Options) error {
	if err := checkHostPort(o.GRPC.BindAddr, false); err != nil {
		return invalid("grpc.bind_addr", "%v", err)
	}
	if o.GRPC.ServerAddr != "" {
		if err := checkHostPort(o.GRPC.ServerAddr, true); err != nil {
			return invalid("grpc.server_addr", "%v", err)
		}
	}
	if err := checkHostPort(o.HTTP.Addr, false); err != nil {
		return invalid("http.addr", "%v", err)
	}
	if o.HTTP.Addr == o.GRPC.BindAddr && !strings.HasSuffix(o.HTTP.Addr, ":0") {
		return invalid("http.addr", "%q is also grpc.bind_addr; the two servers need different ports", o.HTTP.Addr)
	}
	return nil
}

// checkHostPort accepts host:port with a numeric port; advertised addresses
// also need a host and a non-zero port, since peers must be able to dial them.
func checkHostPort(addr string, advertised bool) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port", addr)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return fmt.Errorf("%q: port %q is not a number from 0 to 65535", addr, port)
	}
	if advertised && (host == "" || p == 0) {
		return fmt.Errorf("%q must name a host and a non-zero port that clients can dial", addr)
	}
	return nil
}

func validateTLS(o Options) error {
	t := o.BackendTLS
	mode, ok := postgres.CanonicalTLSMode(t.Mode)
	if !ok {
		return invalid("backend_tls.mode", "unknown mode %q (expected %s)", t.Mode, postgres.TLSModesHelp)
	}
	t.Mode = mode
	if (t.Mode == postgres.TLSVerifyCA || t.Mode == postgres.TLSVerifyFull) && t.CACertPath == "" {
		return invalid("backend_tls.ca_cert_path", "is required when backend_tls.mode is %s", t.Mode)
	}
	if (t.CertPath == "") != (t.KeyPath == "") {
		if t.CertPath == "" {
			return invalid("backend_tls.cert_path", "is required when backend_tls.key_path is set")
		}
		return invalid("backend_tls.key_path", "is required when backend_tls.cert_path is set")
	}
	return nil
}

func validatePostgres(o Options) error {
	p := o.Postgres
	positive := []struct {
		key string
		v   int64
	}{
		{"postgres.max_conns", int64(p.MaxConns)},
		{"postgres.min_conns", int64(p.MinConns)},
		{"postgres.max_conn_lifetime", int64(p.MaxConnLifetime)},
		{"postgres.max_conn_idle_time", int64(p.MaxConnIdleTime)},
		{"postgres.connect_timeout", int64(p.ConnectTimeout)},
	}
	for _, c := range positive {
		if c.v <= 0 {
			return invalid(c.key, "must be greater than 0, got %s", formatValue(o, c.key))
		}
	}
	if p.MinConns > p.MaxConns {
		return invalid("postgres.min_conns", "%d is more than postgres.max_conns %d", p.MinConns, p.MaxConns)
	}
	return nil
}

// MinElectionLease is the shortest election.lease (and so
// election.candidate_lease) accepted: the leader renews every lease/3 and
// stops trusting itself a fifth of the lease early, so a shorter lease leaves
// no time for a renewal round trip.
const MinElectionLease = 300 * time.Millisecond

func validateElection(o Options) error {
	e := o.Election
	if e.Lease < MinElectionLease {
		return invalid("election.lease", "must be at least %s, got %s", formatDuration(MinElectionLease), formatDuration(e.Lease))
	}
	if e.CampaignInterval <= 0 || e.CampaignInterval >= e.Lease {
		return invalid("election.campaign_interval", "must be greater than 0 and less than election.lease (%s), got %s",
			formatDuration(e.Lease), formatDuration(e.CampaignInterval))
	}
	if e.CandidateLease < e.Lease {
		return invalid("election.candidate_lease", "must be at least election.lease (%s), got %s",
			formatDuration(e.Lease), formatDuration(e.CandidateLease))
	}
	return nil
}

func validateLogging(o Options) error {
	_, err := parseLogging(o.Logging)
	return err
}
