package pop3gen

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/pop3kit/pop3kit/pop3"
)

// sessionMix is what a mail client sends in a typical session: log in, look
// at the maildrop, fetch and delete a few messages, quit. Fetchmail,
// Thunderbird and Outlook all send about this.
var sessionMix = []string{
	"CAPA\r\n",
	"USER alice@example.org\r\n",
	"PASS correct-horse-battery\r\n",
	"STAT\r\n",
	"LIST\r\n",
	"UIDL\r\n",
	"TOP 1 0\r\n",
	"RETR 1\r\n",
	"DELE 1\r\n",
	"RETR 2\r\n",
	"DELE 2\r\n",
	"LIST 3\r\n",
	"UIDL 3\r\n",
	"RETR 3\r\n",
	"DELE 3\r\n",
	"NOOP\r\n",
	"QUIT\r\n",
}

// baselineCommand is what the baseline parser returns.
type baselineCommand struct {
	name string
	args []string
	n    []int
}

var errBaseline = errors.New("bad command")

// baselineParse parses a line the way most POP3 servers do: trim, split on
// spaces, upper-case the keyword, strconv the numbers.
func baselineParse(line string) (baselineCommand, error) {
	fields := strings.Fields(strings.TrimRight(line, "\r\n"))
	if len(fields) == 0 {
		return baselineCommand{}, errBaseline
	}
	c := baselineCommand{name: strings.ToUpper(fields[0]), args: fields[1:]}
	switch c.name {
	case "RETR", "DELE", "LIST", "UIDL", "TOP":
		for _, a := range c.args {
			n, err := strconv.Atoi(a)
			if err != nil || n < 1 && c.name != "TOP" {
				return c, errBaseline
			}
			c.n = append(c.n, n)
		}
	}
	return c, nil
}

func mixBytes() ([][]byte, int64) {
	var total int64
	b := make([][]byte, len(sessionMix))
	for i, l := range sessionMix {
		b[i] = []byte(l)
		total += int64(len(l))
	}
	return b, total
}

// BenchmarkParse runs the session mix through the generated parser
// ("generated") and through the baseline ("baseline") in the same run; the
// README reports the ratio.
func BenchmarkParse(b *testing.B) {
	lines, total := mixBytes()
	v := Exchange2010()
	// Correctness before timing: both parsers accept the whole mix.
	for i, l := range lines {
		var c pop3.Command
		if err := c.Parse(l, &v, 0); err != nil {
			b.Fatalf("generated parser refused %q: %v", sessionMix[i], err)
		}
		if _, err := baselineParse(sessionMix[i]); err != nil {
			b.Fatalf("baseline parser refused %q", sessionMix[i])
		}
	}
	b.Run("generated", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(total)
		var c pop3.Command
		for b.Loop() {
			for _, l := range lines {
				if err := c.Parse(l, &v, 0); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("baseline", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(total)
		for b.Loop() {
			for _, l := range lines {
				// The conversion is part of the baseline: servers built on
				// bufio.Reader.ReadString get a string per line.
				if _, err := baselineParse(string(l)); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

// BenchmarkDotWriter streams a message body through the dot-stuffing
// writer ("dotwriter") and copies the same bytes into the same kind of
// buffer ("copy") in the same run; the ratio is the cost of LF → CRLF and
// dot-stuffing.
func BenchmarkDotWriter(b *testing.B) {
	body := []byte(strings.Repeat("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod.\n.dot line\n", 1000))
	var out bytes.Buffer
	out.Grow(2 * len(body))
	b.Run("dotwriter", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		d := pop3.NewDotWriter(&out)
		for b.Loop() {
			out.Reset()
			d.Reset(&out)
			_, _ = d.Write(body)
			_ = d.Close()
		}
	})
	b.Run("copy", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			out.Reset()
			_, _ = out.Write(body)
		}
	})
}
