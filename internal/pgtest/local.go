package pgtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// superuser is the role initdb creates; tests connect as it.
const superuser = "postgres"

// errNoBinaries means no local PostgreSQL installation was found.
var errNoBinaries = errors.New("no local PostgreSQL binaries (initdb, postgres) on PATH or in /usr/lib/postgresql/*/bin")

// speedSettings trade durability for speed: a test cluster is thrown away,
// so a crash losing data does not matter.
var speedSettings = []string{
	"fsync=off",
	"synchronous_commit=off",
	"full_page_writes=off",
	"wal_level=minimal",
	"max_wal_senders=0",
	"checkpoint_timeout=1h",
	"max_connections=500",
	"shared_buffers=32MB",
	"log_min_messages=warning",
	"log_connections=off",
	"log_disconnections=off",
}

// localServer is a PostgreSQL cluster in a temporary directory, run from the
// local binaries as a child process of the test binary.
type localServer struct {
	binDir   string
	dir      string // temporary root: data dir, socket dir, log
	dataDir  string
	logPath  string
	port     int
	password string
	cred     *syscall.Credential // non-nil when running as root
	uid, gid int
	cmd      *exec.Cmd
	logFile  *os.File
	started  bool
}

// findBinDir locates a directory holding initdb and postgres: PATH first,
// then the newest /usr/lib/postgresql/*/bin (Debian's layout).
func findBinDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		// Follow a symlinked initdb (/usr/local/bin -> /usr/lib/postgresql/N/bin):
		// postgres lives beside the real file.
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		dir := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(dir, "postgres")); err == nil {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, d := range dirs {
		_, errInit := os.Stat(filepath.Join(d, "initdb"))
		_, errPG := os.Stat(filepath.Join(d, "postgres"))
		if errInit == nil && errPG == nil {
			return d, nil
		}
	}
	return "", errNoBinaries
}

func versionOf(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// newLocalServer runs initdb in a fresh temporary directory. As root it runs
// everything as the postgres OS user, because initdb and postgres refuse root.
func newLocalServer(opts ClusterOptions) (*localServer, error) {
	binDir, err := findBinDir()
	if err != nil {
		return nil, err
	}
	s := &localServer{binDir: binDir, password: randomHex(12), uid: -1, gid: -1}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root needs a postgres OS user to run PostgreSQL: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.uid, s.gid = uid, gid
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	// A short path: the Unix socket path is limited to ~107 bytes.
	s.dir, err = os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, fmt.Errorf("create temp dir: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			_ = os.RemoveAll(s.dir)
		}
	}()
	if err := s.chown(s.dir); err != nil {
		return nil, err
	}
	s.dataDir = filepath.Join(s.dir, "data")
	s.logPath = filepath.Join(s.dir, "postgres.log")
	pwFile := filepath.Join(s.dir, "pwfile")
	if err := s.writeFile(pwFile, []byte(s.password+"\n"), 0o600); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	cmd := exec.Command(filepath.Join(binDir, "initdb"),
		"-D", s.dataDir, "-U", superuser, "--pwfile", pwFile,
		"--auth-local=trust", "--auth-host=scram-sha-256",
		"--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions")
	s.prepare(cmd)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("initdb: %w\n%s", err, out.String())
	}
	_ = os.Remove(pwFile)
	if err := s.configure(opts); err != nil {
		return nil, err
	}
	ok = true
	return s, nil
}

// configure writes postgresql.auto.conf-style settings, extra files and
// pg_hba.conf (the options' rules first, so they win).
func (s *localServer) configure(opts ClusterOptions) error {
	for name, content := range opts.Files {
		if filepath.IsAbs(name) || strings.Contains(name, "..") {
			return fmt.Errorf("cluster file %q: want a plain name relative to the data directory", name)
		}
		if err := s.writeFile(filepath.Join(s.dataDir, name), content, 0o600); err != nil {
			return err
		}
	}
	conf := append(append([]string{}, speedSettings...), opts.Conf...)
	f, err := os.OpenFile(filepath.Join(s.dataDir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("open postgresql.conf: %w", err)
	}
	_, werr := f.WriteString("\n# pgtest\n" + strings.Join(conf, "\n") + "\n")
	if err := errors.Join(werr, f.Close()); err != nil {
		return fmt.Errorf("write postgresql.conf: %w", err)
	}
	hba := append(append([]string{}, opts.HBA...),
		"local all all trust",
		"host all all 127.0.0.1/32 scram-sha-256",
		"host all all ::1/128 scram-sha-256",
	)
	return s.writeFile(filepath.Join(s.dataDir, "pg_hba.conf"), []byte(strings.Join(hba, "\n")+"\n"), 0o600)
}

func (s *localServer) prepare(cmd *exec.Cmd) {
	cmd.Dir = s.dir // the postgres user may not be able to enter the test's working directory
	cmd.Env = append(os.Environ(), "LC_ALL=C", "TZ=UTC")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: s.cred,
		// If the test binary dies (timeout panic, kill), take the server down
		// with it instead of leaking a postmaster.
		Pdeathsig: syscall.SIGQUIT,
	}
}

func (s *localServer) writeFile(path string, data []byte, mode os.FileMode) error {
	if err := os.WriteFile(path, data, mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return s.chown(path)
}

func (s *localServer) chown(path string) error {
	if s.cred == nil {
		return nil
	}
	if err := os.Chown(path, s.uid, s.gid); err != nil {
		return fmt.Errorf("chown %s to postgres: %w", path, err)
	}
	return nil
}

// start launches postgres and waits until it accepts connections. The first
// start picks a free port (another one if that start fails: the port may have
// been taken meanwhile); later starts reuse it, so a DSN handed out stays valid
// across restarts.
func (s *localServer) start(ctx context.Context) error {
	if s.cmd != nil {
		return errors.New("postgres already running")
	}
	if s.started {
		return s.startOnce(ctx)
	}
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if s.port, err = freePort(); err != nil {
			return err
		}
		if err = s.startOnce(ctx); err == nil {
			s.started = true
			return nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	return err
}

func (s *localServer) startOnce(ctx context.Context) error {
	logFile, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("open server log: %w", err)
	}
	if err := s.chown(s.logPath); err != nil {
		_ = logFile.Close()
		return err
	}
	cmd := exec.Command(filepath.Join(s.binDir, "postgres"),
		"-D", s.dataDir,
		"-p", strconv.Itoa(s.port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories="+s.dir,
	)
	s.prepare(cmd)
	// Files, not buffers: exec then starts no copying goroutines, so
	// goleak in the tests never sees the harness.
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return fmt.Errorf("start postgres: %w", err)
	}
	s.cmd, s.logFile = cmd, logFile
	if err := s.waitReady(ctx); err != nil {
		s.kill()
		return fmt.Errorf("postgres did not become ready on port %d: %w\n%s", s.port, err, s.logTail())
	}
	return nil
}

// waitReady polls until a connection succeeds, the process exits, or ctx ends.
// It goes through the Unix socket (trusted, no TLS), so pg_hba rules a test
// adds for TCP, such as requiring TLS, cannot keep it waiting.
func (s *localServer) waitReady(ctx context.Context) error {
	for {
		if exited(s.cmd.Process.Pid) {
			return errors.New("postgres exited")
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		conn, err := pgx.Connect(cctx, s.socketDSN())
		cancel()
		if err == nil {
			_ = conn.Close(context.Background())
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// exited reports whether pid is gone or a zombie, without reaping it.
func exited(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return errors.Is(err, os.ErrNotExist)
	}
	// Format: pid (comm) state ...; comm may contain spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && (b[i+2] == 'Z' || b[i+2] == 'X')
}

// stop shuts postgres down with a fast shutdown (SIGINT: roll back open
// transactions, disconnect clients), escalating to SIGQUIT if it hangs.
func (s *localServer) stop() error {
	if s.cmd == nil {
		return nil
	}
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		_ = s.cmd.Process.Signal(syscall.SIGQUIT)
		err = <-done
	}
	_ = s.logFile.Close()
	s.cmd, s.logFile = nil, nil
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		return fmt.Errorf("wait for postgres: %w", err)
	}
	return nil
}

func (s *localServer) kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGQUIT)
	_ = s.cmd.Wait()
	_ = s.logFile.Close()
	s.cmd, s.logFile = nil, nil
}

// destroy stops the server and removes its directory.
func (s *localServer) destroy() error {
	err := s.stop()
	return errors.Join(err, os.RemoveAll(s.dir))
}

func (s *localServer) logTail() string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return ""
	}
	const max = 4000
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return "server log (tail):\n" + string(b)
}

// dsn is a superuser URL for database db over TCP.
func (s *localServer) dsn(db string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(superuser, s.password),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)),
		Path:     "/" + db,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// socketDSN reaches the server through its Unix socket in the temp dir.
func (s *localServer) socketDSN() string {
	q := url.Values{
		"host":    {s.dir},
		"port":    {strconv.Itoa(s.port)},
		"user":    {superuser},
		"sslmode": {"disable"},
	}
	return "postgres:///postgres?" + q.Encode()
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
