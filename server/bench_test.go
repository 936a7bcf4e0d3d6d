package server_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pop3kit/pop3kit/server"
)

// heapAndStacks returns the memory the Go runtime holds for objects and
// goroutine stacks, after a collection.
func heapAndStacks() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}

// holdSessions opens n connections to addr, runs setup on each, and
// returns them (the caller closes them).
func holdSessions(tb testing.TB, addr string, n int, setup func(net.Conn) error) []net.Conn {
	conns := make([]net.Conn, 0, n)
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", addr)
		require.NoError(tb, err)
		require.NoError(tb, setup(c))
		conns = append(conns, c)
	}
	return conns
}

// readReply reads one reply line with a small stack buffer: the client
// side of the measurement must cost as little as possible.
func readReply(c net.Conn) (string, error) {
	var buf [256]byte
	n := 0
	for n < len(buf) {
		m, err := c.Read(buf[n : n+1])
		if err != nil {
			return "", err
		}
		n += m
		if n >= 2 && buf[n-2] == '\r' && buf[n-1] == '\n' {
			return string(buf[:n-2]), nil
		}
	}
	return "", fmt.Errorf("reply too long")
}

func exchange(c net.Conn, line string) (string, error) {
	if _, err := c.Write([]byte(line + "\r\n")); err != nil {
		return "", err
	}
	return readReply(c)
}

// BenchmarkIdleSessions holds 2,000 authenticated sessions and reports
// the server's memory per session ("B/session"): the runtime's heap and
// stacks with pop3d serving them, less the same 2,000 connections held by
// a listener that only accepts ("baseline"), measured in the same run.
func BenchmarkIdleSessions(b *testing.B) {
	const n = 2000
	b.ReportAllocs()
	for b.Loop() {
		// Baseline: the connections alone.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(b, err)
		var held []net.Conn
		var mu sync.Mutex
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				mu.Lock()
				held = append(held, c)
				mu.Unlock()
			}
		}()
		before := heapAndStacks()
		conns := holdSessions(b, ln.Addr().String(), n, func(net.Conn) error { return nil })
		require.Eventually(b, func() bool { mu.Lock(); defer mu.Unlock(); return len(held) == n }, 30*time.Second, 10*time.Millisecond)
		baseline := float64(int64(heapAndStacks())-int64(before)) / n
		for _, c := range conns {
			c.Close()
		}
		ln.Close()
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		mu.Unlock()

		// pop3d: greeted, logged in, idle.
		// Every session is alice's: lift the per-user and per-address
		// limits that would refuse most of them.
		e := newEnv(b, "exchange2010", func(c *server.Config) { c.MaxSessionsPerUser, c.MaxPreauthPerIP, c.MaxSessions = n, n, 2*n })
		e.deliver("alice", msg1, "")
		before = heapAndStacks()
		conns = holdSessions(b, e.addr, n, func(c net.Conn) error {
			if _, err := readReply(c); err != nil {
				return err
			}
			if _, err := exchange(c, "USER alice"); err != nil {
				return err
			}
			r, err := exchange(c, "PASS secret")
			if err == nil && !strings.HasPrefix(r, "+OK") {
				err = fmt.Errorf("login: %s", r)
			}
			return err
		})
		require.EqualValues(b, n, e.srv.Sessions())
		// Idle: a session lets go of its maildrop's directory after a
		// second without a command (the runtime calls Maildrop.Idle).
		time.Sleep(1500 * time.Millisecond)
		perSession := float64(int64(heapAndStacks())-int64(before)) / n
		b.ReportMetric(perSession, "B/session")
		b.ReportMetric(baseline, "B/conn-baseline")
		b.ReportMetric(perSession-baseline, "B/session-net")
		for _, c := range conns {
			c.Close()
		}
	}
}

// BenchmarkFullSessions runs whole sessions over loopback — connect,
// greeting, USER/PASS, STAT, LIST, RETR of a 1 kB message, QUIT — from
// parallel clients ("pop3d"), beside the same number of round trips to a
// server that answers every line with "+OK" ("baseline"). The passwd
// entry is PLAIN, so the number measures the protocol, not the hash.
func BenchmarkFullSessions(b *testing.B) {
	e := newEnv(b, "rfc1939", set("MaildropAccess=snapshot"))
	e.deliver("alice", "Subject: bench\n\n"+strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n", 16), "")
	session := func(addr string, retr bool) error {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		r := bufio.NewReader(c)
		line := func() (string, error) { return r.ReadString('\n') }
		if _, err := line(); err != nil {
			return err
		}
		for _, cmd := range []string{"USER alice", "PASS secret", "STAT", "LIST", "RETR 1", "QUIT"} {
			if _, err := c.Write([]byte(cmd + "\r\n")); err != nil {
				return err
			}
			l, err := line()
			if err != nil {
				return err
			}
			if !strings.HasPrefix(l, "+OK") {
				return fmt.Errorf("%s: %s", cmd, l)
			}
			if retr && (cmd == "LIST" || cmd == "RETR 1") {
				for l != ".\r\n" {
					if l, err = line(); err != nil {
						return err
					}
				}
			}
		}
		return nil
	}
	run := func(b *testing.B, addr string, retr bool) {
		b.ReportAllocs()
		start := time.Now()
		b.SetParallelism(4)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := session(addr, retr); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "sessions/s")
	}
	b.Run("pop3d", func(b *testing.B) { run(b, e.addr, true) })
	b.Run("baseline", func(b *testing.B) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(b, err)
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					_, _ = c.Write([]byte("+OK\r\n"))
					r := bufio.NewReader(c)
					for {
						if _, err := r.ReadString('\n'); err != nil {
							return
						}
						if _, err := c.Write([]byte("+OK\r\n")); err != nil {
							return
						}
					}
				}()
			}
		}()
		run(b, ln.Addr().String(), false)
	})
}

// BenchmarkRETR100MB retrieves a 100 MB message over loopback ("pop3d":
// LF→CRLF and dot-stuffing on the fly) and copies the same file over a
// loopback connection ("baseline": io.Copy from the file to the socket),
// in the same run. MB/s is of the stored message.
func BenchmarkRETR100MB(b *testing.B) {
	const size = 100 << 20
	e := newEnv(b, "rfc1939", set("MaildropAccess=snapshot"))
	var body bytes.Buffer
	body.WriteString("Subject: a large message\n\n")
	for i := 0; body.Len() < size; i++ {
		if i%50 == 0 {
			body.WriteString(".a line that needs dot-stuffing\n")
		}
		fmt.Fprintf(&body, "%08d The quick brown fox jumps over the lazy dog, then on to the next line.\n", i)
	}
	name := e.deliver("alice", body.String(), "")
	stored := int64(body.Len())
	body = bytes.Buffer{}

	b.Run("pop3d", func(b *testing.B) {
		c, err := net.Dial("tcp", e.addr)
		require.NoError(b, err)
		defer c.Close()
		r := bufio.NewReaderSize(c, 64*1024)
		line := func() string { l, err := r.ReadString('\n'); require.NoError(b, err); return l }
		line()
		for _, cmd := range []string{"USER alice", "PASS secret"} {
			_, _ = c.Write([]byte(cmd + "\r\n"))
			require.True(b, strings.HasPrefix(line(), "+OK"))
		}
		b.ReportAllocs()
		b.SetBytes(stored)
		buf := make([]byte, 64*1024)
		for b.Loop() {
			_, _ = c.Write([]byte("RETR 1\r\n"))
			require.True(b, strings.HasPrefix(line(), "+OK"))
			// Read to the terminator, keeping the last five octets.
			var tail [5]byte
			for !bytes.Equal(tail[:], []byte("\r\n.\r\n")) {
				n, err := r.Read(buf)
				require.NoError(b, err)
				if n >= 5 {
					copy(tail[:], buf[n-5:n])
				} else {
					copy(tail[:], append(tail[n:], buf[:n]...))
				}
			}
		}
	})
	b.Run("baseline", func(b *testing.B) {
		path := filepath.Join(e.root, "alice", "cur", name+":2,")
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(b, err)
		defer ln.Close()
		go func() {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			one := make([]byte, 1)
			for {
				if _, err := c.Read(one); err != nil {
					return
				}
				f, err := os.Open(path)
				if err != nil {
					return
				}
				_, _ = io.Copy(c, f)
				f.Close()
			}
		}()
		c, err := net.Dial("tcp", ln.Addr().String())
		require.NoError(b, err)
		defer c.Close()
		b.ReportAllocs()
		b.SetBytes(stored)
		for b.Loop() {
			_, _ = c.Write([]byte{1})
			_, err := io.CopyN(io.Discard, c, stored)
			require.NoError(b, err)
		}
	})
}
