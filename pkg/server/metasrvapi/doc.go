// Package metasrvapi is the gRPC API of package metasrv.v1 (pkg/api/metasrv/v1):
// the Store service (the key-value API of package kv), the Cluster service
// (who leads, the live members) and the Procedure service (durable
// procedures), over the metasrv core (package metasrv) and the procedure
// manager.
//
// The services only convert: the wire form in, the core's answer out, with
// the header the core reports (metasrv.HeaderInfo). They return plain Go
// errors; package apierr's interceptors, which the gRPC server must install,
// are the only place an error becomes a status, with the same map the HTTP
// admin API answers from.
//
// Layout of pkg/server, one package per API:
//
//	pkg/server            the gRPC and HTTP servers: TLS, admission, health, reflection
//	pkg/server/apierr     the one error map and the gRPC interceptors, shared by every API
//	pkg/server/metasrvapi metasrv.v1 (this package)
//	pkg/server/admin      the HTTP admin API (JSON errors from apierr)
//	pkg/server/metrics    Prometheus metrics of the servers
//
// GreptimeDB's greptime.v1.meta services (Heartbeat, Store, Cluster, Config,
// ProcedureService) will live beside this package, in pkg/server/greptimeapi,
// on the same core (metasrv.Metasrv, the procedure manager) and the same
// error map: they answer "not leader" in their response header, as
// GreptimeDB's meta-client expects, from apierr.Classify's Answer.
package metasrvapi
