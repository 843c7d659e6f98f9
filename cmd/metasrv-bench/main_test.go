package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"
)

// metasrvBin is the metasrv binary the benchmark's nodes run, built once
// for all tests.
var metasrvBin string

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "metasrv-bench-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	metasrvBin = filepath.Join(dir, "metasrv")
	build := exec.Command("go", "build", "-o", metasrvBin, "github.com/pgmetasrv/metasrv/cmd/metasrv")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build metasrv:", err)
		return 1
	}
	code := m.Run()
	if code == 0 {
		// The harness starts goroutines of its own (process watchers, the
		// load clients): none may outlive the tests.
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines outlived the tests:", err)
			code = 1
		}
	}
	return code
}

// runCLI runs the CLI in-process and returns its exit code and output.
func runCLI(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}
