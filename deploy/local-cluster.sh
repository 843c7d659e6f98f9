#!/usr/bin/env bash
# A throwaway local cluster without Docker: PostgreSQL from the installed
# binaries plus three metasrv nodes. Ctrl-C stops and removes everything.
#
#   go tool task cluster          (or: bash deploy/local-cluster.sh [path/to/metasrv])
#
# Nodes: gRPC 127.0.0.1:3002/3012/3022, HTTP admin 127.0.0.1:4000/4010/4020.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${1:-bin/metasrv}
pg_port=${METASRV_CLUSTER_PG_PORT:-55432}
nodes=${METASRV_CLUSTER_NODES:-3}

find_pg_bin() {
	if command -v initdb >/dev/null 2>&1; then dirname "$(command -v initdb)"; return; fi
	local d
	for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && { echo "$d"; return; }; done
	echo "initdb not found: install PostgreSQL server binaries (Debian: apt-get install postgresql)" >&2
	exit 1
}
pg_bin=$(find_pg_bin)
[ -x "$bin" ] || go build -o "$bin" ./cmd/metasrv

as_pg=()
if [ "$(id -u)" = 0 ]; then as_pg=(runuser -u postgres --); fi
work=$(mktemp -d /tmp/metasrv-cluster.XXXXXX)
chmod 755 "$work"
[ ${#as_pg[@]} -eq 0 ] || chown postgres "$work"
pids=()
cleanup() {
	trap - INT TERM EXIT
	echo "stopping the cluster"
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	"${as_pg[@]}" "$pg_bin/pg_ctl" -D "$work/pg" -m fast stop >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap 'cleanup; exit 0' INT TERM
trap cleanup EXIT

"${as_pg[@]}" "$pg_bin/initdb" -D "$work/pg" -U postgres --auth=trust -E UTF8 --locale=C >/dev/null
"${as_pg[@]}" "$pg_bin/pg_ctl" -D "$work/pg" -l "$work/pg.log" -w \
	-o "-c listen_addresses=127.0.0.1 -p $pg_port -k $work" start >/dev/null
dsn="postgres://postgres@127.0.0.1:$pg_port/postgres?sslmode=disable"
echo "PostgreSQL on 127.0.0.1:$pg_port (logs: $work/pg.log)"

for i in $(seq 0 $((nodes - 1))); do
	"$bin" start --backend postgres_store --store-addrs "$dsn" \
		--grpc-bind-addr "127.0.0.1:30${i}2" --http-addr "127.0.0.1:40${i}0" \
		>"$work/node$i.log" 2>&1 &
	pids+=($!)
	echo "node$i: gRPC 127.0.0.1:30${i}2, HTTP 127.0.0.1:40${i}0 (logs: $work/node$i.log)"
done
endpoints=$(seq -s, -f '127.0.0.1:30%g2' 0 $((nodes - 1)))
for _ in $(seq 1 100); do
	if leader=$("$bin" ctl --endpoints "$endpoints" --timeout 1s leader 2>/dev/null); then break; fi
	sleep 0.1
done
echo "leader: ${leader:-none yet}"
echo "try:    $bin ctl --endpoints $endpoints kv put hello world"
echo "Ctrl-C stops and removes everything."
wait -n "${pids[@]}" || true
echo "a node exited; see its log above" >&2
