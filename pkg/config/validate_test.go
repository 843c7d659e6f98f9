package config

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/postgres"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(*Options)
		key    string // "" means valid
		want   string
	}{
		{"defaults", func(*Options) {}, "", ""},
		{"postgres with addrs", func(o *Options) { o.Backend = BackendPostgres }, "", ""},
		{"unknown backend", func(o *Options) { o.Backend = "etcd_store" }, "backend", `unknown backend "etcd_store"`},
		{"postgres without addrs", func(o *Options) { o.Backend = BackendPostgres; o.StoreAddrs = nil }, "store_addrs", "postgres_store needs"},
		{"empty addr", func(o *Options) { o.StoreAddrs = []string{"postgres://a", " "} }, "store_addrs", "entry 1 is empty"},
		{"bad table name", func(o *Options) { o.MetaTableName = "meta-kv" }, "meta_table_name", "invalid identifier"},
		{"empty table name", func(o *Options) { o.MetaTableName = "" }, "meta_table_name", "empty identifier"},
		{"empty schema ok", func(o *Options) { o.MetaSchemaName = "" }, "", ""},
		{"bad schema", func(o *Options) { o.MetaSchemaName = "1meta" }, "meta_schema_name", "invalid identifier"},
		{"max_txn_ops", func(o *Options) { o.MaxTxnOps = 0 }, "max_txn_ops", "must be greater than 0, got 0"},
		{"idle time", func(o *Options) { o.NodeMaxIdleTime = 0 }, "node_max_idle_time", "got 0s"},
		{"retry times", func(o *Options) { o.Procedure.MaxRetryTimes = -1 }, "procedure.max_retry_times", "greater than 0"},
		{"retry delay", func(o *Options) { o.Procedure.RetryDelay = 0 }, "procedure.retry_delay", "greater than 0"},
		{"value size", func(o *Options) { o.Procedure.MaxMetadataValueSize = 0 }, "procedure.max_metadata_value_size", "got 0B"},
		{"value size under the default schema", func(o *Options) { o.Procedure.MaxMetadataValueSize = 30 }, "procedure.max_metadata_value_size", "must be at least 31B, the size of the default schema metadata the leader writes, got 30B"},
		{"heartbeat interval", func(o *Options) { o.HeartbeatInterval = 50 * time.Millisecond }, "heartbeat_interval", "must be at least 100ms, got 50ms"},
		{"selector", func(o *Options) { o.Selector = "random" }, "selector", `selector: unknown selector "random" (expected round_robin, lease_based or load_based)`},
		{"empty selector", func(o *Options) { o.Selector = "" }, "selector", `unknown selector ""`},
		{"selector lease_based", func(o *Options) { o.Selector = "lease_based" }, "", ""},
		{"selector load_based", func(o *Options) { o.Selector = "load_based" }, "", ""},
		{"selector variant name", func(o *Options) { o.Selector = "LoadBased" }, "", ""},
		{"running procedures", func(o *Options) { o.Procedure.MaxRunningProcedures = 0 }, "procedure.max_running_procedures", "greater than 0"},
		{"bind addr", func(o *Options) { o.GRPC.BindAddr = "localhost" }, "grpc.bind_addr", "not host:port"},
		{"bind addr any host", func(o *Options) { o.GRPC.BindAddr = ":3002" }, "", ""},
		{"bind port", func(o *Options) { o.GRPC.BindAddr = "h:99999" }, "grpc.bind_addr", "port"},
		{"server addr needs host", func(o *Options) { o.GRPC.ServerAddr = ":3002" }, "grpc.server_addr", "must name a host"},
		{"server addr ok", func(o *Options) { o.GRPC.ServerAddr = "meta-0.svc:3002" }, "", ""},
		{"http addr", func(o *Options) { o.HTTP.Addr = "nope" }, "http.addr", "not host:port"},
		{"same addr", func(o *Options) { o.HTTP.Addr = o.GRPC.BindAddr }, "http.addr", "different ports"},
		{"both port 0", func(o *Options) { o.HTTP.Addr = "127.0.0.1:0"; o.GRPC.BindAddr = "127.0.0.1:0" }, "", ""},
		{"tls mode", func(o *Options) { o.BackendTLS.Mode = "verify-fullest" }, "backend_tls.mode", `unknown mode "verify-fullest" (expected disable, allow, prefer, require, verify_ca or verify_full; libpq's verify-ca and verify-full are accepted too)`},
		{"tls mode libpq spelling", func(o *Options) { o.BackendTLS = BackendTLSOptions{Mode: "verify-full", CACertPath: "/ca"} }, "", ""},
		{"tls mode libpq spelling needs ca", func(o *Options) { o.BackendTLS.Mode = "verify-ca" }, "backend_tls.ca_cert_path", "required when backend_tls.mode is verify_ca"},
		{"tls mode allow", func(o *Options) { o.BackendTLS.Mode = "allow" }, "", ""},
		{"tls ca", func(o *Options) { o.BackendTLS.Mode = postgres.TLSVerifyCA }, "backend_tls.ca_cert_path", "required when backend_tls.mode is verify_ca"},
		{"tls ca ok", func(o *Options) { o.BackendTLS = BackendTLSOptions{Mode: postgres.TLSVerifyFull, CACertPath: "/ca"} }, "", ""},
		{"tls cert without key", func(o *Options) { o.BackendTLS.CertPath = "/c" }, "backend_tls.key_path", "required"},
		{"tls key without cert", func(o *Options) { o.BackendTLS.KeyPath = "/k" }, "backend_tls.cert_path", "required"},
		{"grpc tls cert without key", func(o *Options) { o.GRPC.TLS.CertPath = "/c" }, "grpc.tls.key_path", "required when grpc.tls.cert_path is set"},
		{"grpc tls key without cert", func(o *Options) { o.GRPC.TLS.KeyPath = "/k" }, "grpc.tls.cert_path", "required when grpc.tls.key_path is set"},
		{"grpc tls ca without cert", func(o *Options) { o.GRPC.TLS.CACertPath = "/ca" }, "grpc.tls.ca_cert_path", "needs grpc.tls.cert_path"},
		{"grpc tls ok", func(o *Options) { o.GRPC.TLS = ServerTLSOptions{CertPath: "/c", KeyPath: "/k", CACertPath: "/ca"} }, "", ""},
		{"http tls key without cert", func(o *Options) { o.HTTP.TLS.KeyPath = "/k" }, "http.tls.cert_path", "required when http.tls.key_path is set"},
		{"http tls ca without cert", func(o *Options) { o.HTTP.TLS.CACertPath = "/ca" }, "http.tls.ca_cert_path", "client certificates are only verified over TLS"},
		{"http tls ok", func(o *Options) { o.HTTP.TLS = ServerTLSOptions{CertPath: "/c", KeyPath: "/k"} }, "", ""},
		{"grpc recv zero", func(o *Options) { o.GRPC.MaxRecvMessageSize = 0 }, "grpc.max_recv_message_size", "greater than 0B and at most 1GiB, got 0B"},
		{"grpc send too large", func(o *Options) { o.GRPC.MaxSendMessageSize = 4 * GiB }, "grpc.max_send_message_size", "at most 1GiB, got 4GiB"},
		{"grpc recv below value size", func(o *Options) { o.GRPC.MaxRecvMessageSize = 1 * MiB }, "grpc.max_recv_message_size", "larger than procedure.max_metadata_value_size (1500KiB)"},
		{"http body limit", func(o *Options) { o.HTTP.BodyLimit = 0 }, "http.body_limit", "greater than 0B"},
		{"admin token short", func(o *Options) { o.HTTP.AdminToken = "short-secret" }, "http.admin_token", "is 12 characters; use at least 16"},
		{"admin token newline", func(o *Options) { o.HTTP.AdminToken = "0123456789abcdef\n" }, "http.admin_token", "whitespace or control characters"},
		{"admin token ok", func(o *Options) { o.HTTP.AdminToken = "0123456789abcdef" }, "", ""},
		{"max conns", func(o *Options) { o.Postgres.MaxConns = 0 }, "postgres.max_conns", "greater than 0"},
		{"connect timeout", func(o *Options) { o.Postgres.ConnectTimeout = 0 }, "postgres.connect_timeout", "greater than 0"},
		{"min > max", func(o *Options) { o.Postgres.MinConns = 50 }, "postgres.min_conns", "more than postgres.max_conns"},
		{"lease", func(o *Options) { o.Election.Lease = 0 }, "election.lease", "at least 300ms, got 0s"},
		{"tiny lease", func(o *Options) {
			o.Election.Lease, o.Election.CampaignInterval = 299*time.Millisecond, 100*time.Millisecond
		}, "election.lease", "at least 300ms, got 299ms"},
		{"shortest lease", func(o *Options) {
			o.Election.Lease, o.Election.CampaignInterval = 300*time.Millisecond, 100*time.Millisecond
		}, "", ""},
		{"campaign interval zero", func(o *Options) { o.Election.CampaignInterval = 0 }, "election.campaign_interval", "greater than 0"},
		{"campaign interval >= lease", func(o *Options) { o.Election.CampaignInterval = o.Election.Lease }, "election.campaign_interval", "less than election.lease (3s), got 3s"},
		{"candidate lease", func(o *Options) { o.Election.CandidateLease = time.Second }, "election.candidate_lease", "at least election.lease"},
		{"log level", func(o *Options) { o.Logging.Level = "trace" }, "logging.level", `unknown level "trace"`},
		{"log format", func(o *Options) { o.Logging.Format = "logfmt" }, "logging.format", `unknown format "logfmt"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := Default()
			tc.mutate(&o)
			before := o
			err := o.Validate()
			require.Equal(t, before, o)
			if tc.key == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrInvalidValue)
			var ce *Error
			require.ErrorAs(t, err, &ce)
			require.Equal(t, tc.key, ce.Key)
			require.True(t, strings.HasPrefix(err.Error(), "config: "+tc.key+": "), err.Error())
			require.Contains(t, err.Error(), tc.want)
			require.NotContains(t, err.Error(), "\n")
			if o.HTTP.AdminToken != "" {
				require.NotContains(t, err.Error(), o.HTTP.AdminToken, "a token is never echoed")
			}
		})
	}
}

func TestValidateMetaTableNameLeavesRoomForSuffixes(t *testing.T) {
	o := Default()
	o.MetaTableName = strings.Repeat("t", MaxMetaTableNameLen)
	require.NoError(t, o.Validate())
	o.MetaTableName += "t"
	err := o.Validate()
	require.ErrorContains(t, err, "meta_table_name")
	require.ErrorContains(t, err, "at most 43")
}

// An unparsable store_addrs entry is refused by index, the address never shown.
func TestValidateRefusesUnparsableStoreAddr(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{
		"postgres:/u:secret@h/db",
		"u:secret@h:5432/db",
		"postgres://u:Pa@ss_Secret1@h:5432/db",
		"postgres://u:secret@h:notaport/db",
	} {
		o := Default()
		o.StoreAddrs = []string{"postgres://u@ok:5432/db", addr}
		err := o.Validate()
		require.ErrorIs(t, err, ErrInvalidValue, addr)
		var ce *Error
		require.ErrorAs(t, err, &ce)
		require.Equal(t, "store_addrs", ce.Key)
		require.True(t, strings.HasPrefix(err.Error(), "config: store_addrs[1]: not a valid PostgreSQL connection string ("), err.Error())
		require.NotContains(t, err.Error(), "secret", addr)
		require.NotContains(t, err.Error(), "Secret1", addr)
		require.NotContains(t, err.Error(), "\n")
	}
}
