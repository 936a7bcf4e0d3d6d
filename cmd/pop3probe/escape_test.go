package main

// This test comes from a hostile review: its comment says what pop3probe
// did before it was fixed; the test holds the fix.

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"os"
	"strings"
	"testing"
)

// TestNoTerminalEscapes: pop3probe prints the greeting, the CAPA
// lines, and each observation's How (which quotes the server's reply
// texts) as they came; a hostile server's ESC sequences reach the
// user's terminal (here: set the window title, clear the screen).
func TestNoTerminalEscapes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const evil = "\x1b]0;pwned\x07\x1b[2J"
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				_, _ = io.WriteString(c, "+OK ready "+evil+"\r\n")
				br := bufio.NewReader(c)
				for {
					l, err := br.ReadString('\n')
					if err != nil {
						return
					}
					if strings.HasPrefix(l, "CAPA") {
						_, _ = io.WriteString(c, "+OK\r\nIMPLEMENTATION "+evil+"\r\n.\r\n")
						continue
					}
					_, _ = io.WriteString(c, "-ERR "+evil+"\r\n")
				}
			}(c)
		}
	}()
	out, err := os.CreateTemp(t.TempDir(), "stdout")
	if err != nil {
		t.Fatal(err)
	}
	oldOut, oldArgs := os.Stdout, os.Args
	os.Stdout, os.Args = out, []string{"pop3probe", "--timeout", "2s", ln.Addr().String()}
	defer func() { os.Stdout, os.Args = oldOut, oldArgs }()
	main()
	os.Stdout = oldOut
	got, _ := os.ReadFile(out.Name())
	if n := bytes.Count(got, []byte{0x1b}); n > 0 {
		i := bytes.IndexByte(got, 0x1b)
		t.Errorf("pop3probe wrote %d ESC octets from the server to the terminal, first in %q", n, got[max(0, i-30):min(len(got), i+20)])
	}
}
