// Package testpg starts a private PostgreSQL for tests: a new cluster in
// a temporary directory, listening on 127.0.0.1 on a free port, with no
// Unix socket, stopped (and its directory removed) by Stop.
//
// initdb and postgres refuse to run as root; when the tests do, the
// cluster runs as the postgres account (Debian's packages create it),
// owner of the temporary directory.
package testpg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pop3kit/pop3kit/internal/pop3test"
)

// BinDir is where PostgreSQL 15's programs are (Debian's postgresql-15);
// $PGBIN overrides it.
var BinDir = "/usr/lib/postgresql/15/bin"

func binDir() string {
	if d := os.Getenv("PGBIN"); d != "" {
		return d
	}
	return BinDir
}

// Available says why a cluster cannot be started here, or nil.
func Available() error {
	for _, p := range []string{"initdb", "pg_ctl", "postgres"} {
		if _, err := os.Stat(filepath.Join(binDir(), p)); err != nil {
			return fmt.Errorf("PostgreSQL is not installed (%v; install postgresql-15 or set PGBIN)", err)
		}
	}
	if os.Geteuid() == 0 {
		if _, err := user.Lookup("postgres"); err != nil {
			return fmt.Errorf("running as root and there is no postgres account to run PostgreSQL as: %v", err)
		}
	}
	return nil
}

// Need skips tb when PostgreSQL is missing, except under CI=true, where
// the tests that need it must run: it fails instead.
func Need(tb testing.TB) {
	tb.Helper()
	if err := Available(); err != nil {
		pop3test.Missing(tb, err)
	}
}

// Options tune the cluster.
type Options struct {
	// Durable keeps fsync on, as a production server runs; tests
	// default to fsync=off, which only a crash of the host can tell.
	Durable bool
}

// Server is one running cluster.
type Server struct {
	Dir  string // the temporary directory: data/ and the log
	Port int
	cred *syscall.Credential // whom the programs run as; nil: as we are
	dbs  atomic.Int64
}

// Start initialises and starts a cluster. Its superuser is "pop3kit",
// with no password (trust on 127.0.0.1 only: the cluster listens nowhere
// else).
func Start(o Options) (*Server, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "pop3kit-pg")
	if err != nil {
		return nil, err
	}
	s := &Server{Dir: dir}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	if out, err := s.run("initdb", "-D", data, "-U", "pop3kit", "-A", "trust", "-E", "UTF8", "--no-sync", "--locale=C"); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	fsync := "off"
	if o.Durable {
		fsync = "on"
	}
	// A port taken between the probe and postgres's bind makes the start
	// fail; try a few.
	for try := 0; ; try++ {
		s.Port, err = freePort()
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -c port=%d -c unix_socket_directories='' -c fsync=%s -c max_connections=200 -c shared_buffers=64MB", s.Port, fsync)
		out, err := s.run("pg_ctl", "-D", data, "-l", filepath.Join(dir, "log"), "-w", "-t", "60", "-o", opts, "start")
		if err == nil {
			return s, nil
		}
		if try == 3 {
			log, _ := os.ReadFile(filepath.Join(dir, "log"))
			os.RemoveAll(dir)
			return nil, fmt.Errorf("pg_ctl start: %v\n%s\n%s", err, out, log)
		}
	}
}

func (s *Server) run(prog string, args ...string) ([]byte, error) {
	cmd := exec.Command(filepath.Join(binDir(), prog), args...)
	cmd.Dir = s.Dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.Bytes(), err
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// DSN is the URL of database db.
func (s *Server) DSN(db string) string {
	return fmt.Sprintf("postgres://pop3kit@127.0.0.1:%d/%s?sslmode=disable", s.Port, db)
}

// Stop stops the cluster now (pg_ctl -m immediate: what a crash looks
// like to its clients) and leaves its files.
func (s *Server) Stop() error {
	out, err := s.run("pg_ctl", "-D", filepath.Join(s.Dir, "data"), "-m", "immediate", "-w", "stop")
	if err != nil {
		return fmt.Errorf("pg_ctl stop: %v\n%s", err, out)
	}
	return nil
}

// Restart starts a stopped cluster again on the same port.
func (s *Server) Restart() error {
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -c port=%d -c unix_socket_directories='' -c fsync=off -c max_connections=200", s.Port)
	out, err := s.run("pg_ctl", "-D", filepath.Join(s.Dir, "data"), "-l", filepath.Join(s.Dir, "log"), "-w", "-t", "60", "-o", opts, "start")
	if err != nil {
		return fmt.Errorf("pg_ctl start: %v\n%s", err, out)
	}
	return nil
}

// Close stops the cluster, if it runs, and removes its directory.
func (s *Server) Close() error {
	err := s.Stop()
	if err != nil && strings.Contains(err.Error(), "Is server running?") {
		err = nil
	}
	return errors.Join(err, os.RemoveAll(s.Dir))
}

// NewDB creates an empty database and returns its URL: each test gets
// its own, so tests share the cluster and not their data.
func (s *Server) NewDB(ctx context.Context) (string, error) {
	name := fmt.Sprintf("t%d_%d", os.Getpid(), s.dbs.Add(1))
	c, err := pgx.Connect(ctx, s.DSN("postgres"))
	if err != nil {
		return "", err
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", err
	}
	return s.DSN(name), nil
}

// shared is the cluster of a test binary, started at its first use by
// Get and stopped by TestMain's call to StopShared.
var shared struct {
	mu      sync.Mutex
	s       *Server
	err     error
	started bool
}

// Get returns the test binary's shared cluster, starting it at the first
// call (after Need). Call StopShared from TestMain.
func Get(tb testing.TB) *Server {
	tb.Helper()
	Need(tb)
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if !shared.started {
		shared.s, shared.err = Start(Options{})
		shared.started = true
	}
	if shared.err != nil {
		tb.Fatal(shared.err)
	}
	return shared.s
}

// DB returns a new database of the shared cluster for tb.
func DB(tb testing.TB) string {
	tb.Helper()
	s := Get(tb)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dsn, err := s.NewDB(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	return dsn
}

// StopShared stops the shared cluster, if one was started.
func StopShared() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.s != nil {
		_ = shared.s.Close()
		shared.s = nil
	}
}
