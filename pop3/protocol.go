package pop3

import (
	"strconv"
	"strings"
	"sync"
)

// A Protocol is a command table as the runtime serves it: one row per
// command, a keyword lookup, the capabilities CAPA announces. A package
// generated from a spec table holds one and hands it to the runtime
// through its Variations type, which is a Dialect
// ((*pop3gen.Variations).Protocol for the standard table); a server does
// not build one by hand.
type Protocol struct {
	// Commands are the rows, indexed by Cmd; Commands[0] is unused.
	Commands []CommandRow
	// Lookup returns the command whose keyword is key (the first 3 or 4
	// octets of a line packed one per byte and folded to lower case), or
	// CmdNone. The generator writes it as a perfect hash.
	Lookup func(key uint32) Cmd
	// Capabilities are the CAPA lines in table order.
	Capabilities []CapabilityRow
	// Handler reports whether h implements the table's Handler interface.
	Handler func(h Handler) bool

	once  sync.Once
	ops   []op   // by Cmd: what the runtime does for it
	keeps uint64 // commands whose argument the login after them needs (USER for PASS)
	exact uint64 // commands whose keyword has an octet that is not a letter (UTF8)
	long  []string
}

// A CommandRow is one command of a Protocol.
type CommandRow struct {
	Name string // the keyword, upper case
	Args Args
	In   State // the states in which it is allowed
	// From and To are the transition on success (none when From is 0).
	From, To State
	Then     Action
	Sets     Mode  // a mode a success switches on
	Guard    Guard // checked before the command runs
	After    Cmd   // a command that must have succeeded just before
	Long     bool  // arguments bounded only by the command length (AUTH)
	Multi    bool  // the positive reply is multi-line (without an argument)
	// Capability is the CAPA tag that advertises the command.
	Capability string
	// Enabled says whether the command is on under the dialect; nil: always.
	Enabled func(Dialect) bool
	// AlwaysOK, AfterAny and IgnoreArgs switch on, under the dialect, the
	// table's AlwaysOKWhen, AfterAnyWhen and IgnoresArgsWhen; nil: never.
	AlwaysOK, AfterAny, IgnoreArgs func(Dialect) bool
	// Serves says whether a handler serves an optional command; nil: every
	// Handler does (or the core answers it).
	Serves func(Handler) bool
	// Call runs a command a Handler answers. user is the argument of the
	// command this one must follow (USER's, for PASS). A command that
	// opens the maildrop returns it.
	Call func(h Handler, w *Writer, c *Command, user []byte) (Maildrop, error)
}

// A CapabilityRow is one CAPA tag of a Protocol.
type CapabilityRow struct {
	Tag  string
	Line string // the line as written, for a tag that is not the server's
	// When says whether the tag is announced under the dialect; nil:
	// always. A tag of the server's own (USER, SASL, STLS, LOGIN-DELAY,
	// EXPIRE, IMPLEMENTATION) is announced from CapaInfo instead.
	When func(Dialect) bool
}

// Handler is the backend of one connection: a value that implements the
// Handler interface of the generated package whose Dialect the Server
// serves (pop3gen.Handler), and any of its optional interfaces
// (AuthHandler, CapaHandler, io.Closer, …).
type Handler any

// A Dialect is what a Server serves: a Protocol and the variations in
// force. A generated package's Variations type is one (it embeds the
// runtime's Variations and adds the table's own, if any).
type Dialect interface {
	// Protocol returns the command table.
	Protocol() *Protocol
	// Runtime returns the variations the runtime honours.
	Runtime() *Variations
}

// Runtime returns v itself, so that a generated Variations that embeds it
// is a Dialect.
func (v *Variations) Runtime() *Variations { return v }

// Cmd is a command of a Protocol: the index of its row. The generated
// package names each (pop3gen.CmdUSER).
type Cmd uint8

// CmdNone is no command.
const CmdNone Cmd = 0

// State is a POP3 session state (RFC 1939 §3); states are bits so that a
// set of them is a State too.
type State uint8

// The states of RFC 1939 §3.
const (
	// StateAuthorization: after the greeting, the client identifies itself.
	StateAuthorization State = 1 << iota
	// StateTransaction: the maildrop is open.
	StateTransaction
	// StateUpdate: after QUIT from TRANSACTION, the marked messages are removed.
	StateUpdate
)

// String returns the state's name as RFC 1939 spells it.
func (s State) String() string {
	switch s {
	case StateAuthorization:
		return "AUTHORIZATION"
	case StateTransaction:
		return "TRANSACTION"
	case StateUpdate:
		return "UPDATE"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// Mode is a set of session modes that change how lines are read.
type Mode uint8

const (
	// ModeUTF8: after UTF8 (RFC 6856 §2.1), USER, PASS and APOP may carry UTF-8.
	ModeUTF8 Mode = 1 << iota
	// ModeTLS: the connection is under TLS.
	ModeTLS
	// ModeSecure: the connection is under TLS or otherwise trusted (loopback), for PlaintextAuth=secure.
	ModeSecure
)

// Action is what the connection does after a command.
type Action uint8

const (
	// ActionContinue: read the next line.
	ActionContinue Action = iota
	// ActionClose: flush the replies and close the connection.
	ActionClose
	// ActionStartTLS: flush, discard every byte the client sent after the
	// command (RFC 2595 §4), run the TLS handshake.
	ActionStartTLS
)

// Args is the argument grammar of a command (spec.Args, in its order).
type Args uint8

// The argument grammars.
const (
	NoArgs      Args = iota // keyword alone
	MsgNum                  // one message-number
	OptMsgNum               // an optional message-number
	MsgNumCount             // a message-number and a line count (TOP)
	Word                    // one argument without spaces (USER)
	Secret                  // one argument, or the rest of the line under PassKeepsSpaces (PASS)
	NameDigest              // a name and an MD5 digest (APOP)
	Mechanism               // a SASL mechanism and an optional initial response (AUTH)
	OptWord                 // an optional argument (LANG)
)

// Guard is a check made before a command runs (spec.Guard, in its order).
type Guard uint8

// The guards.
const (
	NoGuard   Guard = iota
	NotTLS          // refused when TLS is already active (RFC 2595 §4)
	Plaintext       // refused where PlaintextAuth forbids plaintext (MS-STANXPOP3 V0010)
)

// CoreCommand is a command the runtime answers itself, known by its
// keyword: the argument grammar a table's row for it must have, and
// whether the runtime answers it from the Maildrop (STAT, LIST, RETR,
// DELE, RSET, TOP, UIDL) or alone (STLS, CAPA, NOOP, QUIT). A table's
// other commands are answered by Handler methods.
type CoreCommand struct {
	Args     Args
	Maildrop bool
}

// coreCommands are the commands the runtime answers itself, by keyword.
var coreCommands = map[string]CoreCommand{
	"STLS": {NoArgs, false}, "CAPA": {NoArgs, false}, "NOOP": {NoArgs, false}, "QUIT": {NoArgs, false},
	"STAT": {NoArgs, true}, "LIST": {OptMsgNum, true}, "RETR": {MsgNum, true},
	"DELE": {MsgNum, true}, "RSET": {NoArgs, true}, "TOP": {MsgNumCount, true}, "UIDL": {OptMsgNum, true},
}

// CoreCommands returns the commands the runtime answers itself, by
// keyword (a copy: spec.Validate holds a table's rows to it).
func CoreCommands() map[string]CoreCommand {
	out := make(map[string]CoreCommand, len(coreCommands))
	for k, v := range coreCommands {
		out[k] = v
	}
	return out
}

// op is what the runtime does for a command.
type op uint8

const (
	opHandler op = iota // Call, reply through the Writer
	opLogin             // Call returns the maildrop
	opSASL              // an exchange with the AuthHandler
	opSTLS
	opCAPA
	opNOOP
	opQUIT
	opSTAT
	opLIST
	opRETR
	opDELE
	opRSET
	opTOP
	opUIDL
)

var coreOps = map[string]op{"STLS": opSTLS, "CAPA": opCAPA, "NOOP": opNOOP, "QUIT": opQUIT, "STAT": opSTAT,
	"LIST": opLIST, "RETR": opRETR, "DELE": opDELE, "RSET": opRSET, "TOP": opTOP, "UIDL": opUIDL}

// prepare derives what the runtime needs from the rows, once.
func (p *Protocol) prepare() *Protocol {
	p.once.Do(func() {
		p.ops = make([]op, len(p.Commands))
		for i := 1; i < len(p.Commands); i++ {
			r := &p.Commands[i]
			switch {
			case coreOps[r.Name] != 0:
				p.ops[i] = coreOps[r.Name]
			case r.Args == Mechanism:
				p.ops[i] = opSASL
			case r.opens():
				p.ops[i] = opLogin
			}
			if r.After != CmdNone {
				p.keeps |= 1 << r.After
			}
			if r.Long {
				p.long = append(p.long, lower(r.Name))
			}
			for _, c := range []byte(r.Name) {
				if c < 'A' || c > 'Z' {
					p.exact |= 1 << i
				}
			}
		}
	})
	return p
}

// opens reports whether a command opens the maildrop: its edge leads from
// AUTHORIZATION to TRANSACTION.
func (r *CommandRow) opens() bool {
	return r.From == StateAuthorization && r.To == StateTransaction
}

// next returns the state after r succeeded in s.
func (r *CommandRow) next(s State) State {
	if r.From != 0 && r.From == s {
		return r.To
	}
	return s
}

// Name returns the keyword of c, or "" for CmdNone or a command the table
// does not have.
func (p *Protocol) Name(c Cmd) string {
	p.prepare()
	if c != CmdNone && int(c) < len(p.Commands) {
		return p.Commands[c].Name
	}
	return ""
}

// Command returns the command whose keyword is name, in any case, or CmdNone.
func (p *Protocol) Command(name string) Cmd {
	for i := 1; i < len(p.Commands); i++ {
		if strings.EqualFold(p.Commands[i].Name, name) {
			return Cmd(i)
		}
	}
	return CmdNone
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
