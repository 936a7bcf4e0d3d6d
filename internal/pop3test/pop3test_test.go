package pop3test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pop3kit/pop3kit/pop3"
)

// recorder is a testing.TB whose Fatalf records the message and ends the
// goroutine, as the real one does.
type recorder struct {
	testing.TB
	msg string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// fails runs f with a recorder and returns the failure message, "" when f
// did not fail.
func fails(t *testing.T, f func(tb testing.TB)) string {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() { defer close(done); f(r) }()
	<-done
	return r.msg
}

// server answers each line it reads with the next reply of replies.
func server(t *testing.T, greeting string, replies ...string) net.Conn {
	cc, sc := net.Pipe()
	go func() {
		defer sc.Close()
		_ = sc.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(sc, greeting); err != nil {
			return
		}
		br := bufio.NewReader(sc)
		for _, r := range replies {
			if _, err := br.ReadString('\n'); err != nil {
				return
			}
			if _, err := io.WriteString(sc, r); err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// TestHelpersBuildOnEachOther: a greeted connection, a login, a status
// line, a listing and data, read the way every harness reads them.
func TestHelpersBuildOnEachOther(t *testing.T) {
	nc := server(t, "+OK ready <1.2@x>\r\n", "+OK\r\n", "+OK in\r\n", "+OK 2 messages\r\n1 10\r\n..2 20\r\n.\r\n", "+OK\r\nline\r\n\r\n.\r\n")
	c := Greeted(t, nc)
	assert.Equal(t, "+OK ready <1.2@x>", c.Greeting)
	c.Login("u", "p")
	assert.Equal(t, "+OK 2 messages", c.Cmd("LIST"))
	assert.Equal(t, []string{"1 10", ".2 20"}, c.Multi())
	c.Send("RETR 1")
	assert.Equal(t, "+OK", c.Status())
	assert.Equal(t, "line\r\n\r\n", string(c.Data()))
	assert.True(t, c.Closed())
}

// TestFailuresSayWhatWasSentAndWhatCameBack: each check fails with the
// command, the offending reply and the transcript.
func TestFailuresSayWhatWasSentAndWhatCameBack(t *testing.T) {
	for _, tc := range []struct {
		name, reply string
		do          func(c *Conn)
		want        []string
	}{
		{name: "512 octets", reply: "+OK " + strings.Repeat("x", 600) + "\r\n", do: func(c *Conn) { c.Cmd("NOOP") },
			want: []string{"longer than 512 octets", `C: "NOOP"`, "+OK xxxx"}},
		{name: "CRLF", reply: "+OK bare\n", do: func(c *Conn) { c.Cmd("NOOP") },
			want: []string{"LF without CR", `C: "NOOP"`, "+OK bare"}},
		{name: "status", reply: "OK\r\n", do: func(c *Conn) { c.Cmd("STAT") },
			want: []string{"not a status line", `C: "STAT"`, `S: "OK"`}},
		{name: "want OK", reply: "-ERR [AUTH] no\r\n", do: func(c *Conn) { c.OK("PASS x") },
			want: []string{`"PASS x" got "-ERR [AUTH] no", want +OK`}},
		{name: "truncated", reply: "+OK\r\n1 2\r\n", do: func(c *Conn) { c.Cmd("LIST"); c.Multi() },
			want: []string{"terminating", `C: "LIST"`}},
		{name: "bare LF in data", reply: "+OK\r\na\nb\r\n.\r\n", do: func(c *Conn) { c.Cmd("RETR 1"); c.Multi() },
			want: []string{"LF without CR"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := fails(t, func(tb testing.TB) {
				nc := server(t, "+OK hi\r\n", tc.reply)
				tc.do(Greeted(tb, nc))
			})
			for _, w := range tc.want {
				assert.Contains(t, msg, w)
			}
		})
	}
}

// TestLoggedIn dials and logs in over TCP.
func TestLoggedIn(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.WriteString(c, "+OK hi\r\n")
		br := bufio.NewReader(c)
		for _, r := range []string{"+OK\r\n", "+OK maildrop has 0 messages\r\n", "+OK 0 0\r\n"} {
			if _, err := br.ReadString('\n'); err != nil {
				return
			}
			io.WriteString(c, r)
		}
	}()
	c := LoggedIn(t, ln.Addr().String(), "u", "p")
	assert.Equal(t, "+OK 0 0", c.Cmd("STAT"))
	assert.Contains(t, c.Transcript(), `C: "PASS p"`)
}

// TestErrorsNameTheCommand: the error-returning forms say which command
// the reply they could not read answered.
func TestErrorsNameTheCommand(t *testing.T) {
	c := New(nil, server(t, "+OK hi\r\n", "+OK "+strings.Repeat("x", 600)+"\r\n"))
	_, err := c.ReadStatus()
	require.NoError(t, err)
	_, err = c.Exchange("NOOP")
	assert.ErrorContains(t, err, `reading the reply to "NOOP"`)
}

// TestCheckStatus: the fuzz targets' check of a raw status line.
func TestCheckStatus(t *testing.T) {
	assert.NoError(t, CheckStatus("+OK\r\n"))
	assert.NoError(t, CheckStatus("+ \r\n"))
	assert.NoError(t, CheckStatus("-ERR [SYS/TEMP] x\r\n"))
	assert.ErrorContains(t, CheckStatus("+OK"), "CRLF")
	assert.ErrorContains(t, CheckStatus("+OK "+strings.Repeat("x", pop3.MaxReplyOctets)+"\r\n"), "C0001")
	assert.Error(t, CheckStatus("* OK\r\n"))
}

// TestFollowsAReplacedReader: after STLS a test replaces C and R; the
// helpers read from the new ones.
func TestFollowsAReplacedReader(t *testing.T) {
	c := New(t, server(t, "+OK a\r\n"))
	c.Greet()
	c.R = bufio.NewReader(strings.NewReader("+OK from the new reader\r\n"))
	assert.Equal(t, "+OK from the new reader", c.Status())
	_, err := c.ReadStatus()
	require.ErrorIs(t, err, io.EOF)
}
