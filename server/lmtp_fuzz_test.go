package server_test

import (
	"bufio"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pop3kit/pop3kit/internal/fuzzbound"
	"github.com/pop3kit/pop3kit/server"
)

// lmtpReplyLine is one line of an SMTP/LMTP reply (RFC 5321 §4.2).
var lmtpReplyLine = regexp.MustCompile(`^[2-5][0-9][0-9]([ -].*)?$`)

// FuzzLMTPSession: any bytes an MTA may send on the LMTP socket (commands,
// DATA with or without its end, BDAT chunks of any announced size,
// oversized lines and messages) are answered with well-formed reply lines
// (≤ 512 octets, RFC 5321 §4.5.3.1.5) and end when the client closes,
// without a panic; every message that reaches a maildrop was answered
// "Saved" (and a session answered "Saved" stored something), none is larger than
// max_message_size, and nothing is left in tmp/ once the session is over.
// That a stored message's content is exactly what was sent is
// TestLMTPDeliver's to check, on messages it knows. The server is in-process and its
// timers are not reached: the client's end of input ends the session.
func FuzzLMTPSession(f *testing.F) {
	for _, s := range []string{
		"LHLO mta\r\nMAIL FROM:<a@x>\r\nRCPT TO:<alice@x>\r\nDATA\r\nSubject: s\r\n\r\nbody\r\n..dot\r\n.\r\nQUIT\r\n",
		"LHLO mta\r\nMAIL FROM:<a@x>\r\nRCPT TO:<alice@x>\r\nRCPT TO:<ALICE@x>\r\nRCPT TO:<bob+tag@x>\r\nRCPT TO:<nobody@x>\r\nDATA\r\nx\r\n.\r\n",
		"LHLO mta\r\nMAIL FROM:<a@x> SIZE=999999\r\n",
		"LHLO mta\r\nMAIL FROM:<a@x> BODY=BINARYMIME\r\nRCPT TO:<carol@x>\r\nBDAT 5 LAST\r\nhello",
		"LHLO mta\r\nMAIL FROM:<a@x>\r\nRCPT TO:<dave@x>\r\nBDAT 3\r\nabcBDAT 100 LAST\r\nshort",
		"LHLO mta\r\nMAIL FROM:<a@x>\r\nRCPT TO:<erin@x>\r\nDATA\r\n" + strings.Repeat("y", 3000) + "\r\n.\r\n",
		"LHLO mta\r\nMAIL FROM:<a@x>\r\nRCPT TO:<alice@x>\r\nDATA\r\n" + strings.Repeat("z\r\n", 2000) + ".\r\n",
		"LHLO mta\r\nMAIL FROM:<a@x>\r\nRCPT TO:<alice@x>\r\nDATA\r\nno end",
		"LHLO mta\r\nRSET\r\nNOOP\r\nVRFY alice\r\nHELP\r\nMAIL FROM:<>\r\nRCPT TO:<alice>\r\nQUIT\r\n",
		"EHLO mta\r\nHELO mta\r\n\x00\xff\r\n",
		"LHLO mta\r\nMAIL FROM:<a@x>\r\nRCPT TO:<alice+" + strings.Repeat("y", 600) + "@x>\r\nRCPT TO:<nobody" + strings.Repeat("z", 600) + "@x>\r\n",
	} {
		f.Add([]byte(s))
	}
	const max = 4096
	e := newEnv(f, "rfc1939", withLMTP(func(c *server.Config) { c.MaxMessageSize = max }))
	addr := e.srv.LMTPAddr().String()
	// files lists every user's files in sub, by path.
	files := func(sub string) map[string]bool {
		out := map[string]bool{}
		for _, u := range users {
			for _, name := range e.maildirFiles(u.name, sub) {
				out[filepath.Join(e.root, u.name, sub, name)] = true
			}
		}
		return out
	}
	fuzzbound.Fuzz(f, func(t *testing.T, data []byte) {
		before := files("new")
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		defer c.Close()
		require.NoError(t, c.SetDeadline(time.Now().Add(20*time.Second)))
		// Write and close our side while the replies are read, so that a
		// reply the server writes before reading everything cannot block.
		go func() {
			_, _ = c.Write(data)
			_ = c.(*net.TCPConn).CloseWrite()
		}()
		saved := 0
		r := bufio.NewReaderSize(c, 4096)
		for {
			line, err := r.ReadString('\n')
			if err == io.EOF && line == "" {
				break
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("%q: the session did not end within 20 s of the client's end of input", data)
			}
			if err != nil {
				break // reset by the server: it closed with input unread
			}
			text := strings.TrimSuffix(line, "\r\n")
			if len(line) > 512 || !strings.HasSuffix(line, "\r\n") || !lmtpReplyLine.MatchString(text) {
				t.Fatalf("%q: malformed reply line %q", data, line)
			}
			if strings.HasPrefix(text, "250 2.0.0 <") && strings.HasSuffix(text, "> Saved") {
				saved++
			}
		}
		// A session cut off mid-BDAT ends without a reply while its
		// delivery is still being abandoned (go-smtp reads BDAT chunks
		// through a pipe to a goroutine): wait, boundedly, for tmp/ to
		// be clean, then the new files are all there.
		for deadline := time.Now().Add(10 * time.Second); len(files("tmp")) != 0 && time.Now().Before(deadline); {
			time.Sleep(5 * time.Millisecond)
		}
		if n := len(files("tmp")); n != 0 {
			t.Fatalf("%q: %d files left in tmp/", data, n)
		}
		added := 0
		for path := range files("new") {
			if before[path] {
				continue
			}
			added++
			fi, err := os.Stat(path)
			require.NoError(t, err)
			if fi.Size() > max {
				t.Fatalf("%q: %s holds %d octets, more than the limit %d", data, path, fi.Size(), max)
			}
			// The maildrops stay small, so that each input costs the same.
			require.NoError(t, os.Remove(path))
		}
		if added > saved || (saved > 0 && added == 0) {
			t.Fatalf("%q: %d messages stored, %d replies \"Saved\"", data, added, saved)
		}
	})
}
