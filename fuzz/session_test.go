package pop3fuzz

import (
	"bytes"
	"io"
	"strings"
	"testing"

	fuzz "github.com/AdaLogics/go-fuzz-headers"

	"github.com/pop3kit/pop3kit/internal/fuzzbound"
	"github.com/pop3kit/pop3kit/internal/sessionmodel"
	"github.com/pop3kit/pop3kit/pop3"
	"github.com/pop3kit/pop3kit/pop3/memdrop"
	"github.com/pop3kit/pop3kit/spec"
)

// model is a Handler that succeeds or fails as the fuzzer says and
// records whether it, or the maildrop it returns, was called.
type model struct {
	fail   bool
	called bool
	drop   modelDrop
}

func (m *model) r() error {
	m.called = true
	if m.fail {
		return pop3.NewError("", "refused by the model")
	}
	return nil
}

// login returns the maildrop, or the model's refusal with the maildrop
// (which the core must then close).
func (m *model) login() (pop3.Maildrop, error) {
	err := m.r()
	m.drop.given++
	return &m.drop, err
}
func (m *model) User(w *pop3.Writer, arg []byte) error           { return m.r() }
func (m *model) Pass(user, secret []byte) (pop3.Maildrop, error) { return m.login() }
func (m *model) APOP(name, digest []byte) (pop3.Maildrop, error) { return m.login() }
func (m *model) Auth(mechanism string) (pop3.SASLServer, error) {
	if err := m.r(); err != nil {
		return nil, err
	}
	return modelSASL{m}, nil
}

// Mechanisms has one longer than a reply line: a bare AUTH and CAPA must
// cut it.
func (m *model) Mechanisms() []string {
	return []string{"PLAIN", "LOGIN", strings.Repeat("LONG-MECHANISM", 50)}
}
func (m *model) Authenticated() (pop3.Maildrop, error) { return m.login() }

// modelSASL sends one challenge when the client gave no response yet,
// then succeeds or fails as the model says.
type modelSASL struct{ m *model }

func (x modelSASL) Next(resp []byte) ([]byte, bool, error) {
	if resp == nil {
		return []byte("go on"), false, nil
	}
	return nil, true, x.m.r()
}

// Capa adds lines longer than a reply line: the core must cut them.
func (m *model) Capa(info *pop3.CapaInfo) {
	m.called = true
	info.Implementation = strings.Repeat("x", 600)
	info.Lines = append(info.Lines, strings.Repeat("X-LONG ", 100))
}
func (m *model) UTF8(w *pop3.Writer) error             { return m.r() }
func (m *model) Lang(w *pop3.Writer, arg []byte) error { return m.r() }

// modelDrop is the model's maildrop, sessionmodel's maildrop of values
// with the fuzzer's failures: opening and removing fail as the model
// says; any call marks the model called; removing a message out of range
// or twice is a bug of the runtime's.
type modelDrop struct {
	*memdrop.Maildrop
	m     *model
	given int // times a login returned it
}

func (d *modelDrop) Len() int              { d.m.called = true; return d.Maildrop.Len() }
func (d *modelDrop) Size(i int) int64      { d.m.called = true; return d.Maildrop.Size(i) }
func (d *modelDrop) UniqueID(i int) string { d.m.called = true; return d.Maildrop.UniqueID(i) }
func (d *modelDrop) Open(i int) (io.ReadCloser, error) {
	if err := d.m.r(); err != nil {
		return nil, err
	}
	return d.Maildrop.Open(i)
}
func (d *modelDrop) Remove(indexes []int) error {
	if err := d.Maildrop.Remove(indexes); err != nil {
		panic(err)
	}
	return d.m.r()
}

// argsFor returns arguments for a row, well- or ill-formed as pick says.
func argsFor(row spec.Command, pick uint8, text string) string {
	good := sessionmodel.ValidArgs
	switch pick % 6 {
	case 0, 1, 2:
		return good[row.Args]
	case 3:
		return ""
	case 4:
		return " " + text
	default:
		return good[row.Args] + " " + text
	}
}

// checkReply checks the reply invariants: CRLF lines of at most 512
// octets, the first starting with +OK, -ERR or "+ ".
func checkReply(t *testing.T, line string, out []byte) {
	t.Helper()
	if len(out) == 0 {
		return
	}
	if !bytes.HasPrefix(out, []byte("+OK")) && !bytes.HasPrefix(out, []byte("-ERR")) && !bytes.HasPrefix(out, []byte("+ ")) {
		t.Fatalf("%q: reply %q starts with neither +OK, -ERR nor \"+ \"", line, out)
	}
	for _, l := range bytes.SplitAfter(out, []byte("\r\n")) {
		if len(l) > pop3.MaxReplyOctets {
			t.Fatalf("%q: reply line of %d octets", line, len(l))
		}
		if len(l) > 0 && !bytes.HasSuffix(l, []byte("\r\n")) {
			t.Fatalf("%q: reply line %q does not end in CRLF", line, l)
		}
	}
}

// FuzzStateMachine drives a Session with command sequences built from the
// spec table and checks, after every line, the reply invariants and that
// the state moved only as the table's edges allow; a command reaches the
// handler, or the maildrop a login returned, only where the table allows
// it; every maildrop returned is closed once.
func FuzzStateMachine(f *testing.F) {
	f.Add([]byte("\x00\x05USER alice\x00\x00\x01PASS x\x00\x00\x09STAT"))
	fuzzbound.Fuzz(f, func(t *testing.T, data []byte) {
		c := fuzz.NewConsumer(data)
		sel, _ := c.GetByte()
		steps, _ := c.GetByte()
		v := variations(sel)
		var out bytes.Buffer
		h := &model{}
		h.drop = modelDrop{Maildrop: sessionmodel.Maildrop(), m: h}
		s := pop3.NewSession(h, pop3.NewWriter(&out), &v)
		if sel&1 != 0 {
			s.SetMode(pop3.ModeSecure)
		}
		s.SetTLS(sel&2 != 0, false)
		// Every maildrop a login returned is closed once: by the core
		// when the login failed, by Close when the session ends.
		defer func() {
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if closes := h.drop.Closes(); closes != h.drop.given {
				t.Fatalf("the maildrop was returned %d times and closed %d times", h.drop.given, closes)
			}
		}()
		for i := 0; i < int(steps%48); i++ {
			which, err := c.GetByte()
			if err != nil {
				return
			}
			pick, _ := c.GetByte()
			fail, _ := c.GetBool()
			text, _ := c.GetString()
			var line string
			var row spec.Command
			known := int(which) < len(spec.POP3.Commands)*2
			if known {
				row = spec.POP3.Commands[int(which)%len(spec.POP3.Commands)]
				name := row.Name
				if pick&0x80 != 0 {
					name = strings.ToLower(name)
				}
				line = name + argsFor(row, pick, text)
			} else {
				line = text
			}
			before := s.State()
			sasl := s.InSASL()
			h.called, h.fail = false, fail
			out.Reset()
			a := s.Feed([]byte(line + "\r\n"))
			reply := out.String()
			checkReply(t, line, out.Bytes())
			after := s.State()
			if sasl || !known {
				if after != before && !(sasl && after == pop3.StateTransaction) {
					t.Fatalf("%q: state %v → %v outside the table", line, before, after)
				}
			} else {
				allowed := sessionmodel.Model{State: before}.InState(row)
				if h.called && !allowed {
					t.Fatalf("%q reached the handler in %v", line, before)
				}
				switch {
				case strings.HasPrefix(reply, "+OK") && row.Args == spec.Mechanism && after == before:
					// a bare AUTH listing: no transition
				case strings.HasPrefix(reply, "+OK"):
					if want := sessionmodel.Edge(row, before); after != want {
						t.Fatalf("%q: +OK in %v led to %v, the table says %v", line, before, after, want)
					}
				case strings.HasPrefix(reply, "+ "):
					if after != before {
						t.Fatalf("%q: a challenge changed the state", line)
					}
				case h.called && sessionmodel.EntersFinal(row, before):
					if after != sessionmodel.Edge(row, before) {
						t.Fatalf("%q: %v → %v", line, before, after)
					}
				default:
					if after != before {
						t.Fatalf("%q: -ERR in %v changed the state to %v", line, before, after)
					}
				}
			}
			if a == pop3.ActionClose {
				return
			}
			if a == pop3.ActionStartTLS {
				s.TLSStarted()
			}
		}
	})
}
