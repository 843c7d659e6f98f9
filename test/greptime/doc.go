// Package greptime tests metasrv as GreptimeDB's nodes see it: three
// metasrv processes on one PostgreSQL, fake GreptimeDB datanodes, a frontend
// and a flownode (internal/greptimefake) heartbeating to the leader with
// zstd-compressed requests, and the leader SIGKILLed under them. The package
// holds no code outside its tests, which are skipped with -short.
package greptime
