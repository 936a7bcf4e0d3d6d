package property

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pop3kit/pop3kit/internal/pop3test"
	"github.com/pop3kit/pop3kit/internal/testenv"
)

// TestMain removes the pop3d binary the tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	testenv.Cleanup()
	os.Exit(code)
}

// proc is a pop3d process.
type proc struct {
	cmd    *exec.Cmd
	addr   string
	stderr *lockedBuffer
	exited chan struct{}
}

// lockedBuffer collects a process's standard error.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var servingRE = regexp.MustCompile(`serving POP3 on \[([^\] ]+)`)

// startProc starts pop3d serve on 127.0.0.1:0 over root and passwd and
// waits for the address it prints.
//
// pop3d refuses to serve as root, and tests run as root in CI; yet the
// in-process server of the same test writes the maildrop as root, 0600.
// So as root the process is started as the first unprivileged account
// there is, keeping only CAP_DAC_OVERRIDE (ambient), which lets it read
// and write what root wrote, as a pop3d and a delivery agent of one
// account would. pop3d then sees a non-root user and needs no --user.
func startProc(t *testing.T, root, passwd, profile string) (*proc, error) {
	args := []string{"serve", "--mail-root", root, "--passwd", passwd, "--listen", "127.0.0.1:0",
		"--fail-delay", "0", "--profile", profile, "--set", "PlaintextAuth=always", "--log-level", "warn"}
	cmd := exec.Command(testenv.Pop3d(t), args...)
	if os.Geteuid() == 0 {
		uid, gid, err := unprivileged()
		if err != nil {
			return nil, err
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{
			Credential:  &syscall.Credential{Uid: uid, Gid: gid, Groups: []uint32{gid}},
			AmbientCaps: []uintptr{1 /* CAP_DAC_OVERRIDE */},
		}
	}
	p := &proc{cmd: cmd, stderr: &lockedBuffer{}, exited: make(chan struct{})}
	cmd.Stderr = p.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := servingRE.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
		_ = cmd.Wait()
		close(p.exited)
	}()
	select {
	case p.addr = <-addr:
		return p, nil
	case <-p.exited:
		return nil, fmt.Errorf("pop3d %s exited before serving: %s", strings.Join(args, " "), p.stderr.String())
	case <-time.After(20 * time.Second):
		p.kill()
		return nil, fmt.Errorf("pop3d %s did not say where it serves within 20 s: %s", strings.Join(args, " "), p.stderr.String())
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// stop sends SIGTERM (sessions end without removing anything) and waits,
// killing after 10 s.
func (p *proc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		p.kill()
	}
}

// unprivileged returns the first account that is not root: nobody, or
// any with a uid of 1000 or more.
func unprivileged() (uint32, uint32, error) {
	for _, name := range []string{"nobody"} {
		if u, err := user.Lookup(name); err == nil {
			uid, _ := strconv.Atoi(u.Uid)
			gid, _ := strconv.Atoi(u.Gid)
			if uid != 0 {
				return uint32(uid), uint32(gid), nil
			}
		}
	}
	return 65534, 65534, nil
}

// dialAddr connects a client to addr and reads the greeting.
func dialAddr(addr string) (*pop3test.Conn, error) {
	p := &pop3d{addr: addr}
	return p.dial()
}

// loginAddr connects to addr and logs user in with password "pw".
func loginAddr(addr, user string) (*pop3test.Conn, error) {
	p := &pop3d{addr: addr}
	return p.login(user)
}
