package testpg

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// PgBouncer is a PgBouncer (Debian's pgbouncer) in transaction pooling mode
// in front of a cluster, on a spare port, stopped when the test ends.
type PgBouncer struct {
	port int
	dir  string
}

// pgbouncerPath is where Debian installs it.
const pgbouncerPath = "/usr/sbin/pgbouncer"

// StartPgBouncer starts PgBouncer in front of c. It fails the test when
// PgBouncer is not installed (apt-get install -y pgbouncer).
//
// Clients that set plan_cache_mode at connection start (the service's batch
// and reader connections do) get it ignored rather than refused: PgBouncer
// 1.18 knows no way to carry it to the server connections.
func StartPgBouncer(t testing.TB, c *Cluster) *PgBouncer {
	t.Helper()
	path, err := exec.LookPath(pgbouncerPath)
	if err != nil {
		if path, err = exec.LookPath("pgbouncer"); err != nil {
			t.Fatalf("testpg: PgBouncer is not installed: apt-get install -y pgbouncer")
		}
	}
	dir, err := os.MkdirTemp("", "tokenlease-pgbouncer-")
	if err != nil {
		t.Fatalf("testpg: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	port, err := sparePort()
	if err != nil {
		t.Fatalf("testpg: %v", err)
	}
	ini := fmt.Sprintf(`[databases]
* = host=127.0.0.1 port=%d

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = trust
auth_file = %s
pool_mode = transaction
max_client_conn = 1000
default_pool_size = 20
min_pool_size = 0
reserve_pool_size = 0
server_reset_query =
ignore_startup_parameters = extra_float_digits, plan_cache_mode
logfile = %s
`, c.Port(), port, filepath.Join(dir, "users.txt"), filepath.Join(dir, "pgbouncer.log"))
	for name, body := range map[string]string{"pgbouncer.ini": ini, "users.txt": `"postgres" ""` + "\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatalf("testpg: %v", err)
		}
	}
	cmd := exec.Command(path, filepath.Join(dir, "pgbouncer.ini"))
	cmd.Dir = "/"
	if os.Geteuid() == 0 { // PgBouncer refuses to run as root
		cred, err := postgresCredential()
		if err != nil {
			t.Fatalf("testpg: %v", err)
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			t.Fatalf("testpg: %v", err)
		}
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("testpg: start pgbouncer: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGINT) //nolint:errcheck // it may have exited
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill() //nolint:errcheck // last resort
			<-exited
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			conn.Close()
			break
		}
		select {
		case err := <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "pgbouncer.log"))
			t.Fatalf("testpg: pgbouncer exited: %v\n%s", err, log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("testpg: pgbouncer does not listen on %d: %v", port, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return &PgBouncer{port: port, dir: dir}
}

// URL returns the URL of database name through PgBouncer.
func (b *PgBouncer) URL(name string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", b.port, name)
}

func postgresCredential() (*syscall.Credential, error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root needs a postgres user: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}
