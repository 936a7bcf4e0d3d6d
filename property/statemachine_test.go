package property

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/leanovate/gopter"
	"github.com/leanovate/gopter/commands"
	"github.com/leanovate/gopter/gen"

	"github.com/pop3kit/pop3kit/internal/clause"
	"github.com/pop3kit/pop3kit/pop3"
	"github.com/pop3kit/pop3kit/pop3gen"
	"github.com/pop3kit/pop3kit/spec"
)

// smModel is the model of a session, computed from the spec table alone.
type smModel struct {
	profile string
	v       pop3gen.Variations
	state   pop3.State
	user    bool // the last command was a successful USER
	tls     bool
	closed  bool
	lastOK  bool // the last command was let through (and so succeeded)
	// deleted: message 1 is marked deleted (DELE 1 until RSET), so the
	// commands that name it are refused.
	deleted bool
}

// smSystem is the session under test, on a handler that accepts
// everything and a maildrop that never fails, so that the replies are the
// state machine's own.
type smSystem struct {
	s      *pop3.Session
	out    bytes.Buffer
	closed bool
}

type smResult struct {
	reply string
	state pop3.State
}

// accept logs anyone in to an acceptDrop.
type accept struct{}

func (accept) User(w *pop3.Writer, arg []byte) error           { return nil }
func (accept) Pass(user, secret []byte) (pop3.Maildrop, error) { return acceptDrop{}, nil }
func (accept) APOP(name, digest []byte) (pop3.Maildrop, error) { return acceptDrop{}, nil }
func (accept) Auth(mechanism string) (pop3.SASLServer, error)  { return acceptSASL{}, nil }
func (accept) Mechanisms() []string                            { return []string{"PLAIN"} }
func (accept) Authenticated() (pop3.Maildrop, error)           { return acceptDrop{}, nil }
func (accept) UTF8(w *pop3.Writer) error                       { return nil }
func (accept) Lang(w *pop3.Writer, a []byte) error             { return nil }

// acceptDrop is a maildrop of two messages that never fails.
type acceptDrop struct{}

func (acceptDrop) Len() int              { return 2 }
func (acceptDrop) Size(i int) int64      { return 16 }
func (acceptDrop) UniqueID(i int) string { return fmt.Sprintf("uid%d", i) }
func (acceptDrop) Open(i int) (io.ReadCloser, error) {
	return io.NopCloser(strings.NewReader("Subject: x\n\nbody\n")), nil
}
func (acceptDrop) Remove([]int) error { return nil }
func (acceptDrop) Close() error       { return nil }

// validArgs are well-formed arguments for each grammar.
var validArgs = map[spec.Args]string{
	spec.NoArgs: "", spec.MsgNum: " 1", spec.OptMsgNum: " 1", spec.MsgNumCount: " 1 2", spec.Word: " alice",
	spec.Secret: " pw", spec.NameDigest: " alice c4c9334bac560ecc979e58001b3e22fb", spec.Mechanism: " PLAIN", spec.OptWord: " en",
}

// smCommand sends one command of the table with valid arguments.
type smCommand struct{ row spec.Command }

func (c smCommand) String() string { return c.row.Name + validArgs[c.row.Args] }

func (c smCommand) Run(sut commands.SystemUnderTest) commands.Result {
	sys := sut.(*smSystem)
	sys.out.Reset()
	if sys.closed { // the connection is gone; nothing more reaches the session
		return smResult{state: sys.s.State()}
	}
	a := sys.s.Feed([]byte(c.String() + "\r\n"))
	sys.closed = a == pop3.ActionClose
	if a == pop3.ActionStartTLS {
		sys.s.TLSStarted()
	}
	return smResult{reply: sys.out.String(), state: sys.s.State()}
}

// allowed says, from the table and the model, whether the command reaches
// the handler (which then succeeds).
func (c smCommand) allowed(m smModel) bool {
	if c.row.EnabledBy != "" {
		if v, _ := m.v.Get(c.row.EnabledBy); v != "true" {
			return false
		}
	}
	if pop3.State(c.row.In)&m.state == 0 {
		return false
	}
	if c.row.After == "USER" && !m.user {
		return false
	}
	if c.row.Guard == spec.NotTLS && m.tls {
		return false
	}
	if m.deleted && c.namesMessage() {
		return false // RFC 1939 §5: a message marked deleted may not be referred to
	}
	return true
}

// namesMessage says whether the command, with its valid arguments, names
// message 1.
func (c smCommand) namesMessage() bool {
	switch c.row.Args {
	case spec.MsgNum, spec.OptMsgNum, spec.MsgNumCount:
		return true
	}
	return false
}

func (c smCommand) NextState(state commands.State) commands.State {
	m := state.(smModel)
	if m.closed {
		return m
	}
	ok := c.allowed(m)
	m.lastOK = ok
	m.user = ok && c.row.Name == "USER"
	if !ok {
		return m
	}
	for _, e := range c.row.Edges {
		if pop3.State(e.From) == m.state {
			m.state = pop3.State(e.To)
			break
		}
	}
	switch c.row.Name {
	case "DELE":
		m.deleted = true
	case "RSET":
		m.deleted = false
	}
	switch c.row.Then {
	case spec.Close:
		m.closed = true
	case spec.StartTLS:
		m.tls, m.user = true, false // RFC 2595 §4: forget what came before
	}
	return m
}

func (c smCommand) PreCondition(commands.State) bool { return true }

func (c smCommand) PostCondition(state commands.State, result commands.Result) *gopter.PropResult {
	m := state.(smModel) // the model after the command
	r := result.(smResult)
	switch {
	case m.closed && r.reply == "":
		// after QUIT: nothing is answered
	case r.state != m.state:
		return &gopter.PropResult{Status: gopter.PropFalse, Labels: []string{fmt.Sprintf("%s: state %v, the table says %v", c, r.state, m.state)}}
	case m.lastOK != strings.HasPrefix(r.reply, "+OK"):
		return &gopter.PropResult{Status: gopter.PropFalse, Labels: []string{fmt.Sprintf("%s: reply %q, the table says ok=%v", c, r.reply, m.lastOK)}}
	}
	return &gopter.PropResult{Status: gopter.PropTrue}
}

// TestStateMachineModel: sequences of commands drawn from the generated
// command table run on a Session and on a model built from the spec table
// alone (states, edges, After, guards, EnabledBy) and the marking of
// deleted messages: after every command the session's state is the
// model's, and the reply is +OK exactly when the model lets the command
// through (RFC 1939 §3–§6; MS-STANXPOP3 C0002, C0003, V0012).
func TestStateMachineModel(t *testing.T) {
	clause.Covers(t, "C0002", "C0003", "V0012")
	params := parameters(t)
	var rows []interface{}
	for _, info := range (*pop3gen.Variations)(nil).Protocol().Commands[1:] { // generators from the generated table
		for _, r := range spec.POP3.Commands {
			if r.Name == info.Name {
				rows = append(rows, r)
			}
		}
	}
	cmds := &commands.ProtoCommands{
		NewSystemUnderTestFunc: func(initial commands.State) commands.SystemUnderTest {
			m := initial.(smModel)
			sys := &smSystem{}
			v := m.v
			v.MaxBadCommands = 0 // the model does not count errors
			sys.s = pop3.NewSession(accept{}, pop3.NewWriter(&sys.out), &v)
			sys.s.SetMode(pop3.ModeSecure)
			sys.s.SetTLS(true, false) // STLS can start TLS
			return sys
		},
		InitialStateGen: gen.OneConstOf(pop3gen.ProfileNames[0], pop3gen.ProfileNames[1], pop3gen.ProfileNames[2]).Map(func(p string) smModel {
			v, _ := pop3gen.Profile(p)
			return smModel{profile: p, v: v, state: pop3.StateAuthorization}
		}),
		GenCommandFunc: func(commands.State) gopter.Gen {
			return gen.OneConstOf(rows...).Map(func(r spec.Command) commands.Command { return smCommand{r} })
		},
	}
	props := gopter.NewProperties(params)
	props.Property("session follows the table", commands.Prop(cmds))
	check(t, props)
}

// acceptSASL accepts any response.
type acceptSASL struct{}

func (acceptSASL) Next([]byte) ([]byte, bool, error) { return nil, true, nil }
