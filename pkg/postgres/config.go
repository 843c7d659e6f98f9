// Package postgres turns the store settings (Options: addresses, TLS, pool)
// into pgx connection and pool settings (several hosts, TLS, pool sizes),
// connects with retries while PostgreSQL is down, parses store addresses and
// masks their passwords, and validates and quotes identifiers. pgkv, the
// election and the migrations share it, so every PostgreSQL connection of a
// node behaves alike; pkg/config uses it to validate and render, and it
// imports nothing of metasrv's configuration.
package postgres

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Options say how to reach the store: the addresses, TLS and the pool. They
// mirror metasrv's store_addrs, backend_tls.* and postgres.* keys, which
// pkg/config validates (config.Options.Store builds them); the checks here
// only guard against a caller's mistake.
type Options struct {
	// StoreAddrs are the PostgreSQL addresses (URLs or key=value DSNs) of
	// one cluster's hosts.
	StoreAddrs []string
	// TLS replaces the TLS settings of every address; an empty Mode keeps
	// what each address's sslmode says.
	TLS TLSOptions
	// Pool sizes and ages; zero keeps pgxpool's default (or the first
	// address's pool_* parameter).
	MaxConns, MinConns               int
	MaxConnLifetime, MaxConnIdleTime time.Duration
	// ConnectTimeout bounds one connection attempt when the address sets
	// no connect_timeout; zero means no bound.
	ConnectTimeout time.Duration
}

// ConnConfig builds the configuration of a single connection (the election's
// dedicated session, migrations) from store_addrs, backend_tls,
// postgres.connect_timeout and applicationName.
//
// Several store_addrs entries are hosts of one cluster: they are merged into
// one config whose fallbacks are tried in order, and the connection is only
// accepted on a writable host (target_session_attrs=read-write unless the
// address asks for another), so a primary switch is followed on reconnect.
// A non-empty applicationName replaces the address's application_name: it
// tells the node's sessions apart in pg_stat_activity.
func ConnConfig(o Options, applicationName string) (*pgx.ConnConfig, error) {
	cc, _, err := parse(o, applicationName)
	return cc, err
}

// PoolConfig is ConnConfig for a pool, with the postgres.* pool options
// applied. Non-zero options win over pool_* parameters of the first address.
func PoolConfig(o Options, applicationName string) (*pgxpool.Config, error) {
	cc, pc, err := parse(o, applicationName)
	if err != nil {
		return nil, err
	}
	pc.ConnConfig = cc
	p := o
	if p.MaxConns < 0 || p.MinConns < 0 || p.MaxConns > math.MaxInt32 || p.MinConns > math.MaxInt32 {
		return nil, fmt.Errorf("postgres.max_conns and postgres.min_conns must be between 0 and %d, got %d and %d", math.MaxInt32, p.MaxConns, p.MinConns)
	}
	if p.MaxConns > 0 {
		pc.MaxConns = int32(p.MaxConns)
	}
	if p.MinConns > 0 {
		pc.MinConns = int32(p.MinConns)
	}
	if pc.MinConns > pc.MaxConns {
		return nil, fmt.Errorf("postgres.min_conns (%d) is greater than postgres.max_conns (%d)", pc.MinConns, pc.MaxConns)
	}
	if p.MaxConnLifetime > 0 {
		pc.MaxConnLifetime = p.MaxConnLifetime
	}
	if p.MaxConnIdleTime > 0 {
		pc.MaxConnIdleTime = p.MaxConnIdleTime
	}
	return pc, nil
}

// parse merges every store address into one connection config and also
// returns the pool config parsed from the first address (its pool_* keys).
func parse(o Options, applicationName string) (*pgx.ConnConfig, *pgxpool.Config, error) {
	if len(o.StoreAddrs) == 0 {
		return nil, nil, errors.New("store_addrs is empty: expected at least one PostgreSQL URL or key=value DSN")
	}
	var (
		base *pgx.ConnConfig
		pool *pgxpool.Config
	)
	for i, addr := range o.StoreAddrs {
		if strings.TrimSpace(addr) == "" {
			return nil, nil, fmt.Errorf("store_addrs[%d] is empty: expected a PostgreSQL URL or key=value DSN", i)
		}
		// pgconn's parser, with the checks it lacks (an '@' of a password
		// left in a host name); the error never shows the address.
		if _, err := ParseStoreAddr(addr); err != nil {
			return nil, nil, fmt.Errorf("store_addrs[%d]: %w", i, err)
		}
		// pgxpool's parser accepts and strips pool_* keys, which pgx's would
		// send to the server as unknown settings.
		pc, err := pgxpool.ParseConfig(addr)
		if err != nil {
			return nil, nil, fmt.Errorf("store_addrs[%d]: %w", i, AddrParseError(err))
		}
		if base == nil {
			base, pool = pc.ConnConfig, pc
			continue
		}
		c := pc.ConnConfig
		if c.User != base.User || c.Database != base.Database || c.Password != base.Password {
			return nil, nil, fmt.Errorf("store_addrs[%d] %s: user, password or database differ from store_addrs[0]; several entries must be hosts of one PostgreSQL cluster",
				i, SanitizeStoreAddr(addr))
		}
		base.Fallbacks = append(base.Fallbacks, &pgconn.FallbackConfig{Host: c.Host, Port: c.Port, TLSConfig: c.TLSConfig})
		base.Fallbacks = append(base.Fallbacks, c.Fallbacks...)
	}
	if err := applyTLS(base, o.TLS); err != nil {
		return nil, nil, err
	}
	if len(distinctHosts(&base.Config)) > 1 && base.ValidateConnect == nil {
		base.ValidateConnect = pgconn.ValidateConnectTargetSessionAttrsReadWrite
	}
	if base.ConnectTimeout == 0 && o.ConnectTimeout > 0 {
		base.ConnectTimeout = o.ConnectTimeout
	}
	if o.ConnectTimeout < 0 {
		return nil, nil, fmt.Errorf("postgres.connect_timeout must not be negative, got %s", o.ConnectTimeout)
	}
	if applicationName != "" {
		base.RuntimeParams["application_name"] = applicationName
	}
	return base, pool, nil
}
