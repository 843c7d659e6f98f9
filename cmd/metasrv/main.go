// Command metasrv is the metadata server: `metasrv start` runs it, `metasrv
// config` prints the effective configuration, `metasrv version` the build.
package main

import "os"

// Set at build time: go build -ldflags "-X main.version=v1.2.3 -X main.commit=abc123".
var (
	version = "dev"
	commit  = "unknown"
)

func main() {
	os.Exit(run(os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}
