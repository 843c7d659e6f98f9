package config

import (
	"strconv"

	"github.com/spf13/pflag"
)

// FlagConfig names the flag that gives the TOML configuration file.
const FlagConfig = "config"

// flagKeyAnnotation marks a flag with the configuration key it sets, so Load
// can map any annotated flag (including ones added by a command) to its key.
const flagKeyAnnotation = "metasrv_config_key"

// AddFlags defines --config and the flags that override configuration keys
// (--grpc-bind-addr sets grpc.bind_addr, ...). Only flags given on the command
// line override; the defaults shown in help are Default()'s.
func AddFlags(fs *pflag.FlagSet) {
	d := Default()
	fs.String(FlagConfig, "", "TOML configuration file")
	fs.StringArray("store-addrs", d.StoreAddrs, "PostgreSQL addresses, URL or key=value form; repeat or separate with commas")
	bindFlag(fs, "store-addrs", "store_addrs")
	stringFlag(fs, "backend", "backend", d.Backend, "metadata store: memory_store or postgres_store")
	stringFlag(fs, "meta-schema-name", "meta_schema_name", d.MetaSchemaName, "PostgreSQL schema of the metadata table (empty: search_path)")
	stringFlag(fs, "meta-table-name", "meta_table_name", d.MetaTableName, "PostgreSQL table holding the metadata")
	fs.Int64("meta-election-lock-id", d.MetaElectionLockID, "PostgreSQL advisory lock id of the leader election")
	bindFlag(fs, "meta-election-lock-id", "meta_election_lock_id")
	stringFlag(fs, "store-key-prefix", "store_key_prefix", d.StoreKeyPrefix, "prefix of every stored key, to share one table between clusters")
	stringFlag(fs, "grpc-bind-addr", "grpc.bind_addr", d.GRPC.BindAddr, "gRPC listen address host:port")
	stringFlag(fs, "grpc-server-addr", "grpc.server_addr", d.GRPC.ServerAddr, "gRPC address advertised to clients and peers")
	stringFlag(fs, "http-addr", "http.addr", d.HTTP.Addr, "HTTP admin listen address host:port")
	stringFlag(fs, "log-level", "logging.level", d.Logging.Level, "log level: debug, info, warn or error")
	stringFlag(fs, "log-format", "logging.format", d.Logging.Format, "log format: text or json")
}

func stringFlag(fs *pflag.FlagSet, name, key, def, usage string) {
	fs.String(name, def, usage)
	bindFlag(fs, name, key)
}

// bindFlag ties an already defined flag to a configuration key.
func bindFlag(fs *pflag.FlagSet, name, key string) {
	if err := fs.SetAnnotation(name, flagKeyAnnotation, []string{key}); err != nil {
		// Only reachable if name was not defined just above: a programming error.
		panic("config: bind flag " + strconv.Quote(name) + ": " + err.Error())
	}
}
