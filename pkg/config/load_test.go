package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/postgres"
)

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "metasrv.toml")
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

func parsedFlags(t *testing.T, args ...string) *pflag.FlagSet {
	t.Helper()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	AddFlags(fs)
	require.NoError(t, fs.Parse(args))
	return fs
}

func TestLoadDefaults(t *testing.T) {
	t.Parallel()
	o, err := Load("", parsedFlags(t), nil)
	require.NoError(t, err)
	require.Equal(t, Default(), o)
	require.NoError(t, o.Validate())
}

func TestLoadPrecedence(t *testing.T) {
	t.Parallel()
	file := "[http]\naddr = \"127.0.0.1:1001\"\n"
	env := []string{"METASRV_HTTP__ADDR=127.0.0.1:1002", "UNRELATED=x"}
	flag := []string{"--http-addr", "127.0.0.1:1003"}
	tests := []struct {
		name  string
		file  bool
		env   bool
		flag  bool
		wants string
	}{
		{"default", false, false, false, "127.0.0.1:4000"},
		{"file beats default", true, false, false, "127.0.0.1:1001"},
		{"env beats file", true, true, false, "127.0.0.1:1002"},
		{"env beats default", false, true, false, "127.0.0.1:1002"},
		{"flag beats env", true, true, true, "127.0.0.1:1003"},
		{"flag beats file", true, false, true, "127.0.0.1:1003"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := ""
			if tc.file {
				path = writeFile(t, file)
			}
			var environ []string
			if tc.env {
				environ = env
			}
			var args []string
			if tc.flag {
				args = flag
			}
			o, err := Load(path, parsedFlags(t, args...), environ)
			require.NoError(t, err)
			require.Equal(t, tc.wants, o.HTTP.Addr)
			// Untouched keys keep their defaults through every layer.
			require.Equal(t, Default().GRPC.BindAddr, o.GRPC.BindAddr)
		})
	}
}

func TestLoadAllSources(t *testing.T) {
	t.Parallel()
	path := writeFile(t, `
backend = "postgres_store"
store_addrs = ["postgres://a/db", "postgres://b/db", "postgres://c/db"]
meta_schema_name = "meta"
max_txn_ops = 64
node_max_idle_time = "10m"

[procedure]
max_retry_times = 3
retry_delay = "2s"
max_metadata_value_size = "1.5MiB"

[grpc]

[backend_tls]
mode = "verify_full"
ca_cert_path = "/etc/ca.pem"

[election]
lease = "5s"
`)
	environ := []string{
		"METASRV_STORE_ADDRS=postgres://u:p@h1:5432,h2:5432/db?target_session_attrs=read-write,host=h3 password=x dbname=d",
		"METASRV_PROCEDURE__MAX_RUNNING_PROCEDURES=7",
		"METASRV_GRPC__BIND_ADDR=0.0.0.0:3002",
		"METASRV_POSTGRES__CONNECT_TIMEOUT=1m30s",
	}
	fs := parsedFlags(t, "--meta-election-lock-id", "42", "--log-format", "json", "--grpc-server-addr", "10.0.0.1:3002")
	o, err := Load(path, fs, environ)
	require.NoError(t, err)
	require.NoError(t, o.Validate())

	want := Default()
	want.Backend = BackendPostgres
	want.StoreAddrs = []string{"postgres://u:p@h1:5432,h2:5432/db?target_session_attrs=read-write", "host=h3 password=x dbname=d"}
	want.MetaSchemaName = "meta"
	want.MaxTxnOps = 64
	want.NodeMaxIdleTime = 10 * time.Minute
	want.Procedure.MaxRetryTimes = 3
	want.Procedure.RetryDelay = 2 * time.Second
	want.Procedure.MaxMetadataValueSize = 1536 * KiB
	want.Procedure.MaxRunningProcedures = 7
	want.BackendTLS = BackendTLSOptions{Mode: postgres.TLSVerifyFull, CACertPath: "/etc/ca.pem"}
	want.Election.Lease = 5 * time.Second
	want.GRPC.BindAddr = "0.0.0.0:3002"
	want.GRPC.ServerAddr = "10.0.0.1:3002"
	want.Postgres.ConnectTimeout = 90 * time.Second
	want.MetaElectionLockID = 42
	want.Logging.Format = "json"
	require.Equal(t, want, o)
}

func TestLoadFlagStoreAddrsRepeatable(t *testing.T) {
	t.Parallel()
	fs := parsedFlags(t, "--store-addrs", "postgres://a/db,postgres://b/db", "--store-addrs", "host=c,d dbname=x")
	o, err := Load("", fs, []string{"METASRV_STORE_ADDRS=postgres://env/db"})
	require.NoError(t, err)
	require.Equal(t, []string{"postgres://a/db", "postgres://b/db", "host=c,d dbname=x"}, o.StoreAddrs)
}

func TestLoadListReplacesLowerLayer(t *testing.T) {
	t.Parallel()
	path := writeFile(t, `store_addrs = ["postgres://a/db", "postgres://b/db"]`)
	o, err := Load(path, nil, []string{"METASRV_STORE_ADDRS=postgres://c/db"})
	require.NoError(t, err)
	require.Equal(t, []string{"postgres://c/db"}, o.StoreAddrs)
}

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		file     string // TOML content; "" means no file
		env      []string
		args     []string
		kind     error
		key      string
		contains []string
	}{
		{
			name: "unknown key in file", file: "[grpc]\nbind_adr = \"127.0.0.1:1\"\n",
			kind: ErrUnknownKey, key: "grpc.bind_adr",
			contains: []string{`unknown key "grpc.bind_adr" in `, `did you mean "grpc.bind_addr"?`},
		},
		{
			name: "unknown top-level key in file", file: "no_such_thing = 1\n",
			kind: ErrUnknownKey, key: "no_such_thing", contains: []string{`unknown key "no_such_thing"`},
		},
		{
			name: "unknown empty table in file", file: "[nope]\n",
			kind: ErrUnknownKey, key: "nope",
		},
		{
			name: "unknown key in env", env: []string{"METASRV_GRPC__BIND_ADR=127.0.0.1:1"},
			kind: ErrUnknownKey, key: "grpc.bind_adr",
			contains: []string{`unknown key "grpc.bind_adr" from environment variable METASRV_GRPC__BIND_ADR`},
		},
		{
			name: "single underscore for nesting in env", env: []string{"METASRV_HTTP_ADDR=127.0.0.1:1"},
			kind: ErrUnknownKey, key: "http_addr",
		},
		{
			name: "unsupported key", file: "use_memory_store = true\n",
			kind: ErrUnsupportedKey, key: "use_memory_store", contains: []string{"use_memory_store is not supported by this metasrv"},
		},
		{
			name: "unsupported table", file: "[wal]\nprovider = \"raft_engine\"\n",
			kind: ErrUnsupportedKey, key: "wal.provider", contains: []string{"wal.provider is not supported by this metasrv"},
		},
		{
			name: "unsupported in env", env: []string{"METASRV_ENABLE_TELEMETRY=true"},
			kind: ErrUnsupportedKey, key: "enable_telemetry",
			contains: []string{"enable_telemetry is not supported by this metasrv (from environment variable METASRV_ENABLE_TELEMETRY)"},
		},
		{
			name: "deprecated bind_addr", file: "bind_addr = \"127.0.0.1:3002\"\n",
			kind: ErrUnsupportedKey, key: "bind_addr", contains: []string{"bind_addr is not supported by this metasrv; use grpc.bind_addr"},
		},
		{
			name: "deprecated server_addr", file: "server_addr = \"127.0.0.1:3002\"\n",
			kind: ErrUnsupportedKey, key: "server_addr", contains: []string{"use grpc.server_addr"},
		},
		{
			name: "unsupported logging key", file: "[logging]\ndir = \"/tmp/logs\"\n",
			kind: ErrUnsupportedKey, key: "logging.dir",
		},
		{
			name: "table given a value", file: "grpc = \"x\"\n",
			kind: ErrInvalidValue, key: "grpc", contains: []string{"grpc is a table, not a value"},
		},
		{
			name: "malformed duration in file", file: "[procedure]\nretry_delay = \"5 parsecs\"\n",
			kind: ErrInvalidValue, key: "procedure.retry_delay",
			contains: []string{`procedure.retry_delay = "5 parsecs" in `, "invalid duration"},
		},
		{
			name: "duration without unit", file: "node_max_idle_time = 500\n",
			kind: ErrInvalidValue, key: "node_max_idle_time", contains: []string{"expected a duration with a unit"},
		},
		{
			name: "malformed duration in env", env: []string{"METASRV_ELECTION__LEASE=3x"},
			kind: ErrInvalidValue, key: "election.lease",
			contains: []string{`election.lease = "3x" from environment variable METASRV_ELECTION__LEASE: invalid duration`},
		},
		{
			name: "malformed size", file: "[procedure]\nmax_metadata_value_size = \"1500KB2\"\n",
			kind: ErrInvalidValue, key: "procedure.max_metadata_value_size", contains: []string{"invalid size"},
		},
		{
			name: "negative size", file: "[procedure]\nmax_metadata_value_size = -1\n",
			kind: ErrInvalidValue, key: "procedure.max_metadata_value_size", contains: []string{"negative"},
		},
		{
			name: "malformed integer in env", env: []string{"METASRV_MAX_TXN_OPS=lots"},
			kind: ErrInvalidValue, key: "max_txn_ops", contains: []string{"expected an integer"},
		},
		{
			name: "malformed integer flag", args: []string{"--meta-election-lock-id", "1"}, env: []string{"METASRV_META_ELECTION_LOCK_ID=x"},
			kind: ErrInvalidValue, key: "meta_election_lock_id",
		},
		{
			name: "list given a table", file: "[store_addrs]\npassword = \"hunter2\"\n",
			kind: ErrUnknownKey, key: "store_addrs.password",
		},
		{
			name: "syntax error", file: "[grpc\n",
			kind: ErrSource, contains: []string{"line 1"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := ""
			if tc.file != "" {
				path = writeFile(t, tc.file)
			}
			_, err := Load(path, parsedFlags(t, tc.args...), tc.env)
			require.Error(t, err)
			require.ErrorIs(t, err, tc.kind)
			var ce *Error
			require.ErrorAs(t, err, &ce)
			require.Equal(t, tc.key, ce.Key)
			require.NotContains(t, err.Error(), "\n")
			require.NotContains(t, err.Error(), "hunter2")
			for _, c := range tc.contains {
				require.Contains(t, err.Error(), c)
			}
			if path != "" && tc.kind != ErrSource {
				require.Contains(t, err.Error(), path)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "absent.toml")
	_, err := Load(path, nil, nil)
	require.ErrorIs(t, err, ErrSource)
	require.Contains(t, err.Error(), path)
}

func TestLoadFlagErrorNamesFlag(t *testing.T) {
	t.Parallel()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	AddFlags(fs)
	fs.String("lease", "", "")
	bindFlag(fs, "lease", "election.lease")
	require.NoError(t, fs.Parse([]string{"--lease", "soon"}))
	_, err := Load("", fs, nil)
	require.ErrorIs(t, err, ErrInvalidValue)
	require.Contains(t, err.Error(), `election.lease = "soon" from flag --lease: invalid duration`)
}

func TestSplitList(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want []string
	}{
		{"", []string{}},
		{"postgres://a/db", []string{"postgres://a/db"}},
		{"postgres://a/db, postgres://b/db", []string{"postgres://a/db", "postgres://b/db"}},
		{"postgres://h1:5432,h2:5432/db", []string{"postgres://h1:5432,h2:5432/db"}},
		{"host=h1,h2 port=5432,5433 dbname=x", []string{"host=h1,h2 port=5432,5433 dbname=x"}},
		{"host=a dbname=x,host=b dbname=x", []string{"host=a dbname=x", "host=b dbname=x"}},
		{"postgresql://a/db,host=b", []string{"postgresql://a/db", "host=b"}},
	}
	for _, tc := range tests {
		require.Equal(t, tc.want, splitList(tc.in), tc.in)
	}
}

func TestKeysCoverOptions(t *testing.T) {
	t.Parallel()
	keys := Keys()
	require.Contains(t, keys, "grpc.bind_addr")
	require.Contains(t, keys, "procedure.max_metadata_value_size")
	require.Contains(t, keys, "store_addrs")
	for _, k := range keys {
		_, unsupported := unsupportedHint(k)
		require.False(t, unsupported, "%s is both a key and unsupported", k)
	}
}

func TestLoadFileTypesAreStrict(t *testing.T) {
	t.Parallel()
	tests := []struct{ file, key, want string }{
		{"meta_table_name = 5\n", "meta_table_name", "expected a string"},
		{"store_addrs = 5\n", "store_addrs", "expected a list of strings"},
		{"store_addrs = [\"postgres://u:hunter2@h/db\", 5]\n", "store_addrs", "expected a list of strings"},
		{"max_txn_ops = \"128\"\n", "max_txn_ops", "expected an integer"},
	}
	for _, tc := range tests {
		_, err := Load(writeFile(t, tc.file), nil, nil)
		require.ErrorIs(t, err, ErrInvalidValue, tc.file)
		require.Contains(t, err.Error(), tc.key)
		require.Contains(t, err.Error(), tc.want)
		require.NotContains(t, err.Error(), "hunter2")
	}
}

func TestEnvReservedPrefixIsNotConfiguration(t *testing.T) {
	t.Parallel()
	o, err := Load("", nil, []string{"METASRV_TEST_PG_DSN=postgres://u:p@h/db", "METASRV_HTTP__ADDR=127.0.0.1:1003"})
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:1003", o.HTTP.Addr)
	_, err = Load("", nil, []string{"METASRV_TESTS_PG_DSN=x"})
	require.ErrorIs(t, err, ErrUnknownKey)
}

// Integer keys take integers only: a float is refused, not truncated (1.5)
// or read through its exponent (1e3); sizes refuse KB/MB, which some read as
// 1000-based.
func TestLoadRefusesNumberCoercion(t *testing.T) {
	t.Parallel()
	tests := []struct{ file, key, want string }{
		{"max_txn_ops = 1.5\n", "max_txn_ops", "max_txn_ops = 1.5 in "},
		{"max_txn_ops = 1.5\n", "max_txn_ops", "expected an integer, got the floating-point number 1.5; write a whole number without a decimal point or exponent"},
		{"max_txn_ops = 1e3\n", "max_txn_ops", "expected an integer, got the floating-point number 1000.0"},
		{"max_txn_ops = 128.0\n", "max_txn_ops", "expected an integer"},
		{"meta_election_lock_id = 2.0\n", "meta_election_lock_id", "expected an integer"},
		{"[procedure]\nmax_retry_times = 1e1\n", "procedure.max_retry_times", "expected an integer"},
		{"[postgres]\nmax_conns = 3.7\n", "postgres.max_conns", "expected an integer"},
		{"[procedure]\nmax_metadata_value_size = \"1500KB\"\n", "procedure.max_metadata_value_size", `unit "KB" is ambiguous (1000- or 1024-based?); use KiB/MiB/GiB/TiB (1024-based), e.g. 1500KiB`},
		{"[procedure]\nmax_metadata_value_size = \"1.5MB\"\n", "procedure.max_metadata_value_size", "e.g. 1.5MiB"},
		{"[procedure]\nmax_metadata_value_size = 1536000.0\n", "procedure.max_metadata_value_size", "expected an integer number of bytes or a size such as \"1500KiB\", got the floating-point number 1.536e+06"},
	}
	for _, tc := range tests {
		_, err := Load(writeFile(t, tc.file), nil, nil)
		require.ErrorIs(t, err, ErrInvalidValue, tc.file)
		var ce *Error
		require.ErrorAs(t, err, &ce)
		require.Equal(t, tc.key, ce.Key, tc.file)
		require.Contains(t, err.Error(), tc.want, tc.file)
	}
	for _, env := range []string{"METASRV_MAX_TXN_OPS=1.5", "METASRV_MAX_TXN_OPS=1e3", "METASRV_PROCEDURE__MAX_METADATA_VALUE_SIZE=1500KB"} {
		_, err := Load("", nil, []string{env})
		require.ErrorIs(t, err, ErrInvalidValue, env)
	}
	// Integers and IEC sizes still load.
	o, err := Load(writeFile(t, "max_txn_ops = 1_000\n[procedure]\nmax_metadata_value_size = \"1500KiB\"\n"), nil, []string{"METASRV_PROCEDURE__MAX_RETRY_TIMES=7"})
	require.NoError(t, err)
	require.Equal(t, 1000, o.MaxTxnOps)
	require.Equal(t, 1500*KiB, o.Procedure.MaxMetadataValueSize)
	require.Equal(t, 7, o.Procedure.MaxRetryTimes)
}

// backend_tls.mode takes libpq's sslmode spellings too, loaded as the
// canonical value.
func TestLoadBackendTLSModeLibpqSpellings(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"verify-full": postgres.TLSVerifyFull, "verify_full": postgres.TLSVerifyFull,
		"verify-ca": postgres.TLSVerifyCA, "verify_ca": postgres.TLSVerifyCA,
		"disable": postgres.TLSDisable, "allow": postgres.TLSAllow, "prefer": postgres.TLSPrefer, "require": postgres.TLSRequire,
	}
	for in, want := range tests {
		o, err := Load(writeFile(t, "[backend_tls]\nmode = \""+in+"\"\nca_cert_path = \"/ca.crt\"\n"), nil, nil)
		require.NoError(t, err, in)
		require.Equal(t, want, o.BackendTLS.Mode, in)
		require.NoError(t, o.Validate(), in)
		o, err = Load("", nil, []string{"METASRV_BACKEND_TLS__MODE=" + in})
		require.NoError(t, err, in)
		require.Equal(t, want, o.BackendTLS.Mode, in)
	}
	o, err := Load(writeFile(t, "[backend_tls]\nmode = \"verify-fullest\"\n"), nil, nil)
	require.NoError(t, err)
	require.ErrorContains(t, o.Validate(), `backend_tls.mode: unknown mode "verify-fullest"`)
}
