package main

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/pop3kit/pop3kit/server"
)

// A pop3d started as root binds its ports and reads its TLS key, then
// serves as an unprivileged account, which cannot read a key kept root's
// (0600, as every guide has it) nor, often, the configuration. So that a
// reload (SIGHUP) can still rotate the certificate, pop3d leaves behind,
// before it gives root up, a privileged config reader, as Dovecot's master
// and OpenSSH's monitor do: a process of its own, still root, that does
// one thing — read the configuration file and the certificate and key it
// names, and hand their bytes over a socket to the server when asked. It
// takes no argument from the server: which files it reads is decided by
// its own reading of the configuration, as root, so the mail account can
// learn nothing else through it. It ends when the server does.

// confReaderEnv marks the process that is the config reader: pop3d serve
// started again, with the same arguments, and the socket as fd 3.
const confReaderEnv = "POP3D_CONFIG_READER"

// confReaderWait bounds a fetch from the reader.
var confReaderWait = 10 * time.Second

// maxConfReply bounds a reply: a configuration file, a certificate chain
// and a key are some KiB each.
const maxConfReply = 4 << 20

// confReply is what the reader hands over: the configuration file's
// content (nil without --config) and the PEM certificate and key its
// settings name, or why they could not be read.
type confReply struct {
	ConfigFile []byte `json:"config_file,omitempty"`
	Cert, Key  []byte `json:",omitempty"`
	Err        string `json:",omitempty"`
}

// confReader is the server's side of the reader.
type confReader struct {
	mu     sync.Mutex
	conn   net.Conn
	cmd    *exec.Cmd
	broken error // set by the first failed exchange; the reader is then ended
}

// startConfReader starts the reader, as root, with serve's arguments.
func startConfReader(args []string) (*confReader, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	mine, theirs := os.NewFile(uintptr(fds[0]), "config reader"), os.NewFile(uintptr(fds[1]), "config reader")
	defer theirs.Close()
	conn, err := net.FileConn(mine)
	mine.Close()
	if err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		conn.Close()
		return nil, err
	}
	cmd := exec.Command(exe, append([]string{"serve"}, args...)...)
	cmd.Env = append(os.Environ(), confReaderEnv+"=1")
	cmd.ExtraFiles = []*os.File{theirs}
	cmd.Stderr = os.Stderr
	// It dies with the server, whatever kills the server.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		conn.Close()
		return nil, fmt.Errorf("config reader: %v", err)
	}
	go func() { _ = cmd.Wait() }()
	return &confReader{conn: conn, cmd: cmd}, nil
}

// fetch asks the reader for the configuration file and the TLS files.
// A failure in the exchange itself (the reader gone, too slow, a reply
// out of bounds) ends the reader for good: its reply may still come, and
// a later fetch must never take an old reply for its own (a rotated key
// installed one reload late). Reloads then fail, saying so, until pop3d
// is restarted.
func (r *confReader) fetch() (confReply, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var rep confReply
	if r.broken != nil {
		return rep, r.broken
	}
	b, err := r.exchange()
	if err != nil {
		r.broken = fmt.Errorf("the config reader failed (restart pop3d to read root-only files again): %v", err)
		r.conn.Close()
		if r.cmd != nil && r.cmd.Process != nil {
			_ = r.cmd.Process.Kill()
		}
		return rep, r.broken
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		return rep, fmt.Errorf("config reader: %v", err)
	}
	if rep.Err != "" {
		return rep, errors.New(rep.Err)
	}
	return rep, nil
}

// exchange sends one request and reads its reply's octets, within
// confReaderWait: a reader stuck (on a file system that hangs, say) must
// not hang the reload that asked.
func (r *confReader) exchange() ([]byte, error) {
	_ = r.conn.SetDeadline(time.Now().Add(confReaderWait))
	defer r.conn.SetDeadline(time.Time{})
	if _, err := r.conn.Write([]byte{'r'}); err != nil {
		return nil, err
	}
	var n uint32
	if err := binary.Read(r.conn, binary.BigEndian, &n); err != nil {
		return nil, err
	}
	if n > maxConfReply {
		return nil, fmt.Errorf("a reply of %d octets", n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r.conn, b); err != nil {
		return nil, err
	}
	return b, nil
}

// close ends the reader.
func (r *confReader) close() {
	if r != nil {
		r.conn.Close()
	}
}

// serveConfReader is the reader's life: for each request on fd 3, load
// the configuration as serve does (load), read the files it names, and
// answer; until the server closes its end.
func serveConfReader(configFile string, load func(data []byte) (server.Config, error)) error {
	f := os.NewFile(3, "config reader")
	if f == nil {
		return errors.New("config reader: no socket on fd 3")
	}
	defer f.Close()
	req := make([]byte, 1)
	for {
		if _, err := f.Read(req); err != nil {
			return nil // the server has ended
		}
		rep := readConfigAndKeys(configFile, load)
		b, err := json.Marshal(rep)
		if err != nil {
			return err
		}
		if len(b) > maxConfReply {
			b, _ = json.Marshal(confReply{Err: fmt.Sprintf("config reader: the configuration and TLS files take %d octets, more than %d", len(b), maxConfReply)})
		}
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(b)))
		if _, err := f.Write(append(n[:], b...)); err != nil {
			return nil
		}
	}
}

// readConfigAndKeys reads, as the reader does for each request, the
// configuration file and the certificate and key it names. The file is
// read once: the settings whose TLS files are read are those of the very
// octets handed on (load parses them), not of a later version of it.
func readConfigAndKeys(configFile string, load func(data []byte) (server.Config, error)) confReply {
	var rep confReply
	if configFile != "" {
		b, err := server.ReadSettingsFile(configFile)
		if err != nil {
			return confReply{Err: err.Error()}
		}
		rep.ConfigFile = b
	}
	cfg, err := load(rep.ConfigFile)
	if err != nil {
		return confReply{Err: err.Error()}
	}
	if cfg.TLSCert != "" {
		pem, err := server.ReadPEMPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return confReply{Err: err.Error()}
		}
		rep.Cert, rep.Key = pem.Cert, pem.Key
	}
	return rep
}
