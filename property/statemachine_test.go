package property

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/leanovate/gopter"
	"github.com/leanovate/gopter/commands"
	"github.com/leanovate/gopter/gen"

	"github.com/pop3kit/pop3kit/internal/clause"
	"github.com/pop3kit/pop3kit/internal/sessionmodel"
	"github.com/pop3kit/pop3kit/pop3"
	"github.com/pop3kit/pop3kit/pop3gen"
	"github.com/pop3kit/pop3kit/spec"
)

// smModel is the model of a session, computed from the spec table alone
// (internal/sessionmodel, which the fuzz targets share), and the profile
// it runs under.
type smModel struct {
	sessionmodel.Model
	profile string
	v       pop3gen.Variations
}

// smSystem is the session under test, on a handler that accepts
// everything and a maildrop that never fails (sessionmodel.Accept), so
// that the replies are the state machine's own.
type smSystem struct {
	s      *pop3.Session
	out    bytes.Buffer
	closed bool
}

type smResult struct {
	reply string
	state pop3.State
}

// smCommand sends one command of the table with valid arguments.
type smCommand struct{ row spec.Command }

func (c smCommand) String() string { return c.row.Name + sessionmodel.ValidArgs[c.row.Args] }

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

func (c smCommand) NextState(state commands.State) commands.State {
	m := state.(smModel)
	m.Model = m.Step(c.row)
	return m
}

func (c smCommand) PreCondition(commands.State) bool { return true }

func (c smCommand) PostCondition(state commands.State, result commands.Result) *gopter.PropResult {
	m := state.(smModel) // the model after the command
	r := result.(smResult)
	switch {
	case m.Closed && r.reply == "":
		// after QUIT: nothing is answered
	case r.state != m.State:
		return &gopter.PropResult{Status: gopter.PropFalse, Labels: []string{fmt.Sprintf("%s: state %v, the table says %v", c, r.state, m.State)}}
	case m.LastOK != strings.HasPrefix(r.reply, "+OK"):
		return &gopter.PropResult{Status: gopter.PropFalse, Labels: []string{fmt.Sprintf("%s: reply %q, the table says ok=%v", c, r.reply, m.LastOK)}}
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
			sys.s = pop3.NewSession(sessionmodel.Accept{}, pop3.NewWriter(&sys.out), &v)
			sys.s.SetMode(pop3.ModeSecure)
			sys.s.SetTLS(true, false) // STLS can start TLS
			return sys
		},
		InitialStateGen: gen.OneConstOf(pop3gen.ProfileNames[0], pop3gen.ProfileNames[1], pop3gen.ProfileNames[2]).Map(func(p string) smModel {
			m := smModel{profile: p}
			m.v, _ = pop3gen.Profile(p)
			m.Model = sessionmodel.New(&m.v)
			return m
		}),
		GenCommandFunc: func(commands.State) gopter.Gen {
			return gen.OneConstOf(rows...).Map(func(r spec.Command) commands.Command { return smCommand{r} })
		},
	}
	props := gopter.NewProperties(params)
	props.Property("session follows the table", commands.Prop(cmds))
	check(t, props)
}
