package main

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// activated is a listener systemd (or any socket-activation manager)
// passed in, and whether it is for implicit TLS.
type activated struct {
	ln       net.Listener
	name     string
	implicit bool
}

// listenFDsStart is the first descriptor socket activation passes
// (SD_LISTEN_FDS_START).
const listenFDsStart = 3

// socketActivation returns the listeners passed by socket activation
// (sd_listen_fds(3): LISTEN_PID is this process, LISTEN_FDS descriptors
// from 3, named by LISTEN_FDNAMES — a socket unit's FileDescriptorName).
// A name with "tls" or "pop3s" in it, or "995" as its port, is implicit
// TLS; any other serves plain POP3 with STLS. It unsets the variables, so
// that nothing pop3d starts inherits them. No variables: no listeners.
func socketActivation() ([]activated, error) {
	pid, fds := os.Getenv("LISTEN_PID"), os.Getenv("LISTEN_FDS")
	if fds == "" {
		return nil, nil
	}
	defer func() {
		os.Unsetenv("LISTEN_PID")
		os.Unsetenv("LISTEN_FDS")
		os.Unsetenv("LISTEN_FDNAMES")
	}()
	if pid != strconv.Itoa(os.Getpid()) {
		return nil, nil // meant for another process
	}
	n, err := strconv.Atoi(fds)
	if err != nil || n < 0 || n > 64 {
		return nil, fmt.Errorf("socket activation: LISTEN_FDS=%q is not a count of descriptors", fds)
	}
	names := strings.Split(os.Getenv("LISTEN_FDNAMES"), ":")
	var out []activated
	for i := range n {
		fd := listenFDsStart + i
		syscall.CloseOnExec(fd)
		f := os.NewFile(uintptr(fd), "listen-fd-"+strconv.Itoa(fd))
		ln, err := net.FileListener(f)
		f.Close() // FileListener dup'ed it
		if err != nil {
			for _, a := range out {
				a.ln.Close()
			}
			return nil, fmt.Errorf("socket activation: descriptor %d is not a listening socket: %v", fd, err)
		}
		name := ""
		if i < len(names) {
			name = names[i]
		}
		l := strings.ToLower(name)
		implicit := strings.Contains(l, "tls") || strings.Contains(l, "pop3s")
		if a, ok := ln.Addr().(*net.TCPAddr); ok && a.Port == 995 {
			implicit = true
		}
		out = append(out, activated{ln: ln, name: name, implicit: implicit})
	}
	return out, nil
}
