package proccluster

import (
	"fmt"
	"net"
	"os"
	"strings"
)

// Environ is this process's environment without any METASRV_ variable:
// metasrv refuses unknown METASRV_ keys (a test suite's own knobs, the test
// DSN), and a child must see only the settings its harness gives it.
func Environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "METASRV_") {
			env = append(env, kv)
		}
	}
	return env
}

// FreePorts picks n distinct free TCP ports on 127.0.0.1. A node keeps its
// ports across restarts, so that clients and leader hints stay valid.
func FreePorts(n int) ([]string, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	ports := make([]string, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("pick a free port: %w", err)
		}
		lns = append(lns, ln)
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		ports = append(ports, port)
	}
	return ports, nil
}
