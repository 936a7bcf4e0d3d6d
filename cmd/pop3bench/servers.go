package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// server is a POP3 server under test: a process group the benchmark
// started, and the address it serves.
type server struct {
	name string
	addr string
	cmd  *exec.Cmd
	log  *bytes.Buffer
}

// freeAddr returns a loopback address nothing listens on now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// start runs cmd in a process group of its own and waits until addr
// greets.
func start(name, addr string, cmd *exec.Cmd) (*server, error) {
	log := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	s := &server{name: name, addr: addr, cmd: cmd, log: log}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			g, _ := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if strings.HasPrefix(g, "+OK") {
				return s, nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.stop()
	return nil, fmt.Errorf("%s did not greet on %s within 30 s: %s", name, addr, log.String())
}

// stop ends the server's process group.
func (s *server) stop() {
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

// startFloor runs this program's floor responder on the site's mail.
func startFloor(st *site) (*server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return start("floor", addr, exec.Command(self, "floor", "-listen", addr, "-mail", st.mail))
}

// startPop3d runs pop3d (bin) on the site with the rfc1939 profile (an
// exclusive lock per session), its login policy and limits as shipped,
// and max_sessions above the idle figure.
func startPop3d(bin string, st *site, o options) (*server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	conf := fmt.Sprintf(`listen = [%q]
mail_root = %q
passwd = %q
profile = "rfc1939"
max_sessions = %d
max_preauth_per_ip = %d
log_level = "warn"
`, addr, st.mail, st.passwd, o.idle+1000, o.idle+1000)
	if os.Getuid() == 0 {
		u, _ := user.LookupId(strconv.Itoa(st.uid))
		g, _ := user.LookupGroupId(strconv.Itoa(st.gid))
		if u != nil && g != nil {
			conf += fmt.Sprintf("user = %q\ngroup = %q\n", u.Username, g.Name)
		}
	}
	p := filepath.Join(st.dir, "pop3d.toml")
	if err := os.WriteFile(p, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	return start("pop3d", addr, exec.Command(bin, "serve", "--config", p))
}

// startDovecot runs a private Dovecot on the site in its high-performance
// login mode (service_count = 0, one login process per CPU kept ready),
// plaintext logins allowed on the loopback, one pop3 process per session
// as Dovecot always has it.
func startDovecot(bin string, st *site, o options) (*server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(addr)
	dir := filepath.Join(st.dir, "dovecot")
	if err := os.MkdirAll(filepath.Join(dir, "run"), 0o755); err != nil {
		return nil, err
	}
	internal, login, group := "dovecot", "dovenull", "dovecot"
	if os.Getuid() != 0 {
		u, err := user.Current()
		if err != nil {
			return nil, err
		}
		g, err := user.LookupGroupId(strconv.Itoa(os.Getgid()))
		if err != nil {
			return nil, err
		}
		internal, login, group = u.Username, u.Username, g.Name
	}
	procs := o.idle + 2000
	conf := fmt.Sprintf(`# Written by pop3bench.
base_dir = %[1]s/run
state_dir = %[1]s/state
instance_name = pop3bench-%[2]s
protocols = pop3
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
login_trusted_networks = 127.0.0.0/8
default_internal_user = %[3]s
default_internal_group = %[5]s
default_login_user = %[4]s
first_valid_uid = %[6]d
last_valid_uid = 0
first_valid_gid = %[7]d
log_path = %[1]s/dovecot.log
mail_location = maildir:%[8]s/%%u
pop3_uidl_format = %%08Xu%%08Xv
default_process_limit = %[9]d
default_client_limit = %[9]d
default_vsz_limit = 1G
passdb {
  driver = passwd-file
  args = scheme=PLAIN %[10]s
}
userdb {
  driver = passwd-file
  args = %[10]s
}
service pop3-login {
  chroot =
  service_count = 0
  process_min_avail = %[11]d
  inet_listener pop3 {
    address = 127.0.0.1
    port = %[2]s
  }
}
service pop3 {
  process_limit = %[9]d
}
service anvil {
  chroot =
}
service stats {
  chroot =
}
`, dir, port, internal, login, group, min(st.uid, 1000), min(st.gid, 1000), st.mail, procs, st.passwd, max(2, numCPU()))
	p := filepath.Join(dir, "dovecot.conf")
	if err := os.WriteFile(p, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	s, err := start("dovecot", addr, exec.Command(bin, "-F", "-c", p))
	if err != nil {
		b, _ := os.ReadFile(filepath.Join(dir, "dovecot.log"))
		return nil, fmt.Errorf("%v\n%s", err, b)
	}
	return s, nil
}

// procStat is what /proc says of a server's processes, summed over its
// process group.
type procStat struct {
	cpu   time.Duration // user and system time, the reaped children's included
	pss   int64         // proportional set size, octets
	fds   int           // open descriptors
	procs int
}

var clockTick = 100 // USER_HZ on Linux

// stat reads the server's process group from /proc.
func (s *server) stat() (procStat, error) {
	var out procStat
	pgid := s.cmd.Process.Pid
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return out, err
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid pgrp …: comm may hold spaces and ")".
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+2:]))
		if len(f) < 15 {
			continue
		}
		if g, _ := strconv.Atoi(f[2]); g != pgid {
			continue
		}
		out.procs++
		var ticks int64
		for _, k := range []int{11, 12, 13, 14} { // utime stime cutime cstime
			v, _ := strconv.ParseInt(f[k], 10, 64)
			ticks += v
		}
		out.cpu += time.Duration(ticks) * time.Second / time.Duration(clockTick)
		if r, err := os.ReadFile(filepath.Join("/proc", e.Name(), "smaps_rollup")); err == nil {
			for _, l := range strings.Split(string(r), "\n") {
				if v, ok := strings.CutPrefix(l, "Pss:"); ok {
					kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
					out.pss += kb << 10
				}
			}
		}
		if fds, err := os.ReadDir(filepath.Join("/proc", e.Name(), "fd")); err == nil {
			out.fds += len(fds)
		}
		_ = pid
	}
	if out.procs == 0 {
		return out, errors.New(s.name + ": no process left")
	}
	return out, nil
}
