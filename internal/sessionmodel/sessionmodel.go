// Package sessionmodel is the model of a POP3 session computed from the
// spec table alone — its states, edges, After, guards and EnabledBy, and
// RFC 1939's rule that a message marked deleted may not be referred to —
// with a Handler that lets every command through. The fuzz targets and
// the property tests hold the runtime to this one model, so that the two
// cannot drift into two readings of the table.
package sessionmodel

import (
	"github.com/pop3kit/pop3kit/pop3"
	"github.com/pop3kit/pop3kit/pop3/memdrop"
	"github.com/pop3kit/pop3kit/spec"
)

// Getter reads a variation by name, as a generated Variations does.
type Getter interface {
	Get(name string) (string, error)
}

// Model is a session's state as the table says it goes: immutable, each
// step returns the next.
type Model struct {
	V     Getter
	State pop3.State
	// User: the last command was a successful USER (PASS may follow).
	User bool
	// TLS: TLS is active (STLS is refused, RFC 2595 §4).
	TLS bool
	// Closed: the session ended (QUIT, or a command that closes).
	Closed bool
	// Deleted: message 1 is marked deleted (DELE 1 until RSET), so a
	// command that names it is refused (RFC 1939 §5).
	Deleted bool
	// LastOK: the last command was let through, and so succeeded.
	LastOK bool
}

// New returns the model of a session that starts in AUTHORIZATION under
// the variations v.
func New(v Getter) Model { return Model{V: v, State: pop3.StateAuthorization} }

// InState says whether the table allows row in the model's state: the
// first thing the runtime checks, before any Handler or Maildrop is
// asked.
func (m Model) InState(row spec.Command) bool { return pop3.State(row.In)&m.State != 0 }

// Allows says whether row, sent with well-formed arguments naming message
// 1 (ValidArgs), reaches the handler or the maildrop and so succeeds
// under a Handler that accepts everything.
func (m Model) Allows(row spec.Command) bool {
	if row.EnabledBy != "" {
		if v, _ := m.V.Get(row.EnabledBy); v != "true" {
			return false
		}
	}
	switch {
	case !m.InState(row):
		return false
	case row.After == "USER" && !m.User:
		return false
	case row.Guard == spec.NotTLS && m.TLS:
		return false
	case m.Deleted && NamesMessage(row):
		return false
	}
	return true
}

// Step returns the model after row: let through or refused as Allows
// says.
func (m Model) Step(row spec.Command) Model {
	if m.Closed {
		return m
	}
	ok := m.Allows(row)
	m.LastOK = ok
	m.User = ok && row.Name == "USER"
	if !ok {
		return m
	}
	m.State = Edge(row, m.State)
	switch row.Name {
	case "DELE":
		m.Deleted = true
	case "RSET":
		m.Deleted = false
	}
	switch row.Then {
	case spec.Close:
		m.Closed = true
	case spec.StartTLS:
		m.TLS, m.User = true, false // RFC 2595 §4: forget what came before
	}
	return m
}

// Edge returns the state the table says row leads to from st on success:
// st itself when row has no edge from it.
func Edge(row spec.Command, st pop3.State) pop3.State {
	for _, e := range row.Edges {
		if pop3.State(e.From) == st {
			return pop3.State(e.To)
		}
	}
	return st
}

// EntersFinal says whether row leads from st into a final state (QUIT
// into UPDATE), which it does whatever its reply.
func EntersFinal(row spec.Command, st pop3.State) bool {
	to := Edge(row, st)
	for _, s := range spec.POP3.States {
		if s.Final && pop3.State(s.State) == to && to != st {
			return true
		}
	}
	return false
}

// NamesMessage says whether row, with ValidArgs, names message 1.
func NamesMessage(row spec.Command) bool {
	switch row.Args {
	case spec.MsgNum, spec.OptMsgNum, spec.MsgNumCount:
		return true
	}
	return false
}

// ValidArgs are well-formed arguments for each grammar, with the leading
// space; those that name a message name message 1.
var ValidArgs = map[spec.Args]string{
	spec.NoArgs: "", spec.MsgNum: " 1", spec.OptMsgNum: " 1", spec.MsgNumCount: " 1 2", spec.Word: " alice",
	spec.Secret: " pw", spec.NameDigest: " alice c4c9334bac560ecc979e58001b3e22fb", spec.Mechanism: " PLAIN", spec.OptWord: " en",
}

// Bodies are the messages of the maildrop Accept logs in to: one with a
// line that needs dot-stuffing, one without a final line break.
var Bodies = []string{"Subject: a\n\n.dot\nbody\n", "Subject: b\r\n\r\nno final break"}

// Accept is a Handler of every optional interface that lets every login
// in, to a fresh maildrop of Bodies, and succeeds at every command, so
// that the replies a session gives are the state machine's own.
type Accept struct{}

// Maildrop returns a fresh maildrop of Bodies.
func Maildrop() *memdrop.Maildrop {
	msgs := make([]memdrop.Message, len(Bodies))
	for i, b := range Bodies {
		msgs[i] = memdrop.Message{Body: []byte(b)}
	}
	return memdrop.New(msgs...)
}

func (Accept) User(*pop3.Writer, []byte) error         { return nil }
func (Accept) Pass(_, _ []byte) (pop3.Maildrop, error) { return Maildrop(), nil }
func (Accept) APOP(_, _ []byte) (pop3.Maildrop, error) { return Maildrop(), nil }
func (Accept) Auth(string) (pop3.SASLServer, error)    { return acceptSASL{}, nil }
func (Accept) Mechanisms() []string                    { return []string{"PLAIN"} }
func (Accept) Authenticated() (pop3.Maildrop, error)   { return Maildrop(), nil }
func (Accept) UTF8(*pop3.Writer) error                 { return nil }
func (Accept) Lang(*pop3.Writer, []byte) error         { return nil }

// acceptSASL accepts any response.
type acceptSASL struct{}

func (acceptSASL) Next([]byte) ([]byte, bool, error) { return nil, true, nil }
