// Package testpg runs a private PostgreSQL cluster inside a test, on a spare
// port, so that the test may stop, restart or crash it without disturbing
// any other test. The cluster is created with initdb (--no-sync: about a
// second) and removed when the test ends. As root, initdb and pg_ctl run as
// the postgres user, in a directory that user owns (PostgreSQL refuses to run
// as root).
//
// It also runs PgBouncer (pgbouncer.go) in front of a cluster.
package testpg

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Cluster is a private PostgreSQL server.
type Cluster struct {
	t    testing.TB
	bin  string // PostgreSQL's bin directory
	dir  string // the data directory (also the socket directory)
	port int

	mu      sync.Mutex
	running bool
}

// StopMode is how pg_ctl stops the server.
type StopMode string

const (
	// Fast ends every session (57P01 admin_shutdown) and shuts down cleanly.
	Fast StopMode = "fast"
	// Immediate kills the server without a clean shutdown, as a crash
	// would; the next start recovers from the WAL.
	Immediate StopMode = "immediate"
)

// Start creates and starts a cluster that is removed when the test ends.
// It fails the test (never skips) when PostgreSQL is not installed.
func Start(t testing.TB) *Cluster {
	t.Helper()
	bin, err := binDir()
	if err != nil {
		t.Fatalf("testpg: %v", err)
	}
	dir, err := os.MkdirTemp("", "tokenlease-testpg-")
	if err != nil {
		t.Fatalf("testpg: %v", err)
	}
	c := &Cluster{t: t, bin: bin, dir: dir}
	t.Cleanup(c.remove)
	if err := c.chown(dir); err != nil {
		t.Fatalf("testpg: %v", err)
	}
	if out, err := c.run("initdb", "-D", dir, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"); err != nil {
		t.Fatalf("testpg: initdb: %v\n%s", err, out)
	}
	c.port, err = sparePort()
	if err != nil {
		t.Fatalf("testpg: %v", err)
	}
	if err := c.start(); err != nil {
		t.Fatalf("testpg: %v", err)
	}
	return c
}

// Port is the TCP port the server listens on (127.0.0.1).
func (c *Cluster) Port() int { return c.port }

// URL returns the URL of database name on the cluster (user postgres).
func (c *Cluster) URL(name string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, name)
}

// SocketURL returns the URL of database name over the cluster's Unix
// socket: a connection that pg_stat_activity tells from any TCP one (its
// client_addr is null).
func (c *Cluster) SocketURL(name string) string {
	return fmt.Sprintf("postgres://postgres@/%s?host=%s&port=%d&sslmode=disable", name, c.dir, c.port)
}

// Stop stops the server.
func (c *Cluster) Stop(mode StopMode) {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if out, err := c.run("pg_ctl", "-D", c.dir, "-m", string(mode), "-w", "-t", "30", "stop"); err != nil {
		c.t.Fatalf("testpg: stop: %v\n%s", err, out)
	}
	c.running = false
}

// Start starts a stopped server again, on the same port.
func (c *Cluster) Start() {
	c.t.Helper()
	if err := c.start(); err != nil {
		c.t.Fatalf("testpg: %v", err)
	}
}

// Restart stops the server and starts it again.
func (c *Cluster) Restart(mode StopMode) {
	c.t.Helper()
	c.Stop(mode)
	c.Start()
}

// Exec runs sql on database name, failing the test on error.
func (c *Cluster) Exec(name, sql string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.URL(name))
	if err != nil {
		c.t.Fatalf("testpg: connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		c.t.Fatalf("testpg: %s: %v", sql, err)
	}
}

func (c *Cluster) start() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	opts := fmt.Sprintf("-h 127.0.0.1 -p %d -k %s -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200", c.port, c.dir)
	out, err := c.run("pg_ctl", "-D", c.dir, "-l", filepath.Join(c.dir, "server.log"), "-w", "-t", "30", "-o", opts, "start")
	if err != nil {
		return fmt.Errorf("start: %v\n%s\n%s", err, out, c.logTail())
	}
	c.running = true
	return nil
}

func (c *Cluster) remove() {
	c.mu.Lock()
	running := c.running
	c.mu.Unlock()
	if running {
		if out, err := c.run("pg_ctl", "-D", c.dir, "-m", "immediate", "-w", "stop"); err != nil {
			c.t.Logf("testpg: stop at the end: %v\n%s", err, out)
		}
	}
	if err := os.RemoveAll(c.dir); err != nil {
		c.t.Logf("testpg: remove %s: %v", c.dir, err)
	}
}

func (c *Cluster) logTail() string {
	b, _ := os.ReadFile(filepath.Join(c.dir, "server.log"))
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// run runs one of PostgreSQL's programs, as the postgres user when root.
func (c *Cluster) run(prog string, args ...string) ([]byte, error) {
	return runAs(filepath.Join(c.bin, prog), args...)
}

// runAs runs path with args, through runuser as the postgres user when the
// test runs as root, from / (the test's own directory may be closed to it).
func runAs(path string, args ...string) ([]byte, error) {
	var cmd *exec.Cmd
	if os.Geteuid() == 0 {
		cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	cmd.Dir = "/"
	return cmd.CombinedOutput()
}

// chown gives dir to the postgres user when the test runs as root.
func (c *Cluster) chown(dir string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	cred, err := postgresCredential()
	if err != nil {
		return err
	}
	return os.Chown(dir, int(cred.Uid), int(cred.Gid))
}

// binDir finds the newest installed PostgreSQL's bin directory.
func binDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) < version(dirs[j]) })
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "initdb")); err == nil {
			return dirs[i], nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("PostgreSQL is not installed (no initdb): apt-get install -y postgresql")
}

func version(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// sparePort returns a TCP port on 127.0.0.1 that nothing listens on now.
func sparePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
