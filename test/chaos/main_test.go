package chaos

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"
)

// metasrvBin is the metasrv binary built once for the whole test binary,
// so every node process (and every restart) runs the same build.
var metasrvBin string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "metasrv-chaos-bin-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "chaos: temp dir: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	// Built lazily by the first test that needs it, so `go test -short` or
	// a -run that selects only the model tests costs no build.
	metasrvBin = filepath.Join(dir, "metasrv")
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "chaos: goroutines outlived the tests: %v\n", err)
			code = 1
		}
	}
	return code
}

// buildMetasrv compiles cmd/metasrv into metasrvBin unless done already.
// METASRV_CHAOS_RACE=1 builds the nodes with the race detector;
// METASRV_CHAOS_BIN names a binary to use instead of building one.
func buildMetasrv(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("METASRV_CHAOS_BIN"); bin != "" {
		return bin
	}
	if _, err := os.Stat(metasrvBin); err == nil {
		return metasrvBin
	}
	args := []string{"build", "-o", metasrvBin}
	if os.Getenv("METASRV_CHAOS_RACE") == "1" {
		args = append(args, "-race")
	}
	args = append(args, "github.com/pgmetasrv/metasrv/cmd/metasrv")
	cmd := exec.Command(goTool(), args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("build metasrv: %v\n%s", err, out)
	}
	return metasrvBin
}

// goTool is the go command that runs this test, found the way `go test`
// leaves it: on PATH, else under GOROOT.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	if root := os.Getenv("GOROOT"); root != "" {
		return filepath.Join(root, "bin", "go")
	}
	return "go"
}
