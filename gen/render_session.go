package gen

import (
	"strings"

	"github.com/dave/jennifer/jen"

	"github.com/pop3kit/pop3kit/spec"
)

// params returns the Handler parameters of a command answered by a
// Handler method: a login's (see opens) are its arguments alone, with the
// argument of the command it follows first (PASS gets USER's); any
// other's start with the Writer it answers through.
func (g *gen) params(c spec.Command) []jen.Code {
	var p []jen.Code
	if g.opens(c) {
		if g.followsWord(c) {
			if c.Args == spec.Secret {
				return []jen.Code{jen.List(jen.Id("user"), jen.Id("secret")).Index().Byte()}
			}
			p = append(p, jen.Id("user").Index().Byte())
		}
	} else {
		p = append(p, jen.Id("w").Op("*").Qual(rt, "Writer"))
	}
	switch c.Args {
	case spec.MsgNum, spec.OptMsgNum:
		p = append(p, jen.Id("msg").Uint32())
	case spec.MsgNumCount:
		p = append(p, jen.List(jen.Id("msg"), jen.Id("lines")).Uint32())
	case spec.Word, spec.OptWord:
		p = append(p, jen.Id("arg").Index().Byte())
	case spec.Secret:
		p = append(p, jen.Id("secret").Index().Byte())
	case spec.NameDigest:
		p = append(p, jen.List(jen.Id("name"), jen.Id("digest")).Index().Byte())
	}
	return p
}

// args returns the arguments the dispatcher passes for a command, after
// the Writer or the kept user name where params has them.
func args(c spec.Command) []jen.Code {
	var a []jen.Code
	switch c.Args {
	case spec.MsgNum, spec.OptMsgNum:
		a = append(a, jen.Id("c").Dot("Msg"))
	case spec.MsgNumCount:
		a = append(a, jen.Id("c").Dot("Msg"), jen.Id("c").Dot("Count"))
	case spec.Word, spec.OptWord, spec.Secret:
		a = append(a, jen.Id("c").Dot("Arg1"))
	case spec.NameDigest, spec.Mechanism:
		a = append(a, jen.Id("c").Dot("Arg1"), jen.Id("c").Dot("Arg2"))
	}
	return a
}

// opens reports whether c is a login: answered by a Handler method, with
// an edge from the initial state into one that is not final (where the
// maildrop is open). Its method returns the Maildrop.
func (g *gen) opens(c spec.Command) bool {
	if c.Answer != spec.ByHandler {
		return false
	}
	for _, e := range c.Edges {
		if g.stateInfo(e.From).Initial && !g.stateInfo(e.To).Final && e.To != e.From {
			return true
		}
	}
	return false
}

// followsWord reports whether c follows a command of the Word grammar
// (PASS after USER), whose argument the session keeps for c's method.
func (g *gen) followsWord(c spec.Command) bool {
	if c.After == "" {
		return false
	}
	for _, a := range g.t.Commands {
		if a.Name == c.After {
			return a.Args == spec.Word
		}
	}
	return false
}

// optional reports whether c's Handler method is an optional interface.
func optional(c spec.Command) bool {
	return c.Answer == spec.ByHandler && (c.Optional || c.EnabledBy != "")
}

// signature returns the method of c's Handler or optional interface.
func (g *gen) signature(c spec.Command) jen.Code {
	m := jen.Id(hmethod(c.Name)).Params(g.params(c)...)
	if g.opens(c) {
		return m.Params(jen.Qual(rt, "Maildrop"), jen.Error())
	}
	return m.Error()
}

func multiState(c spec.Command) bool { return c.In&(c.In-1) != 0 }

// initialisms are the command names that Go spells in capitals as method
// names (APOP, not Apop), as it does URL and HTTP.
var initialisms = map[string]bool{"APOP": true, "STLS": true, "UIDL": true, "UTF8": true}

// hmethod returns the Go name of command c's Handler method.
func hmethod(name string) string {
	if initialisms[name] {
		return name
	}
	return method(name)
}

// optionalIface returns the name of the optional interface of an optional
// command (APOPHandler): a server that does not serve it leaves it out,
// and the command is then refused and not announced.
func optionalIface(c spec.Command) string { return hmethod(c.Name) + "Handler" }

var argDoc = map[spec.Args]string{
	spec.NoArgs:      "",
	spec.MsgNum:      " msg is the message-number (from 1).",
	spec.OptMsgNum:   " msg is the message-number, or 0 when the client gave none (the reply is then multi-line).",
	spec.MsgNumCount: " msg is the message-number, lines the count of body lines.",
	spec.Word:        " arg is the argument; it aliases the read buffer.",
	spec.Secret:      " secret is the password as the PassKeepsSpaces variation reads it; it aliases the read buffer.",
	spec.NameDigest:  " name and digest alias the read buffer.",
	spec.Mechanism:   "",
	spec.OptWord:     " arg is the argument, or nil when the client gave none (the reply is then multi-line).",
}

// openDoc ends the doc of a login's method.
const openDoc = " Return the user's maildrop, opened as the MaildropAccess variation says; the core writes the +OK with its totals and serves the TRANSACTION commands from it. An error refuses the login: an *Error as it is, any other as -ERR [SYS/TEMP] internal server error."

// methodDoc returns the doc comment of c's Handler method.
func (g *gen) methodDoc(c spec.Command) string {
	doc := hmethod(c.Name) + " handles " + c.Name + ", which " + lowerFirst(c.Doc)
	if g.followsWord(c) && g.opens(c) {
		doc += " user is the argument of the " + c.After + " before it."
	}
	doc += argDoc[c.Args]
	if g.opens(c) {
		doc += openDoc
	} else {
		doc += " Write the positive reply through w (or nothing, and the core writes \"+OK\"), or return an error."
	}
	if multiState(c) {
		doc += " A handler that needs the state asks the session (Conn.Session().State())."
	}
	return doc
}

// session renders the Handler interfaces and the Session state machine.
//
//	type Handler interface { User(w *Writer, arg []byte) error; Pass(user, secret []byte) (Maildrop, error) }
//	func (s *Session) Feed(line []byte) Action

// forgets returns the statements by which a failed command with
// AfterAnyWhen forgets the command it followed: a failed PASS needs a new
// USER, as Dovecot's pop3-login has it.
//
//	if c == CmdPASS { s.done &^= 1 << CmdUSER }

// capa renders CapaInfo and WriteCapa from the capability table.
//
//	func WriteCapa(w *Writer, v *Variations, c *CapaInfo) {
//		w.Begin("Capability list follows")
//		w.Line("TOP") // spec: TOP — RFC2449-6.1-TOP
//		…

// wrap joins words into comment lines of at most 76 characters; jennifer
// writes a comment with newlines inside an interface as separate // lines.
func wrap(s string) string {
	var b strings.Builder
	n := 0
	for i, w := range strings.Fields(s) {
		if i > 0 {
			if n+1+len(w) > 76 {
				b.WriteString("\n")
				n = 0
			} else {
				b.WriteString(" ")
				n++
			}
		}
		b.WriteString(w)
		n += len(w)
	}
	return b.String()
}

// commentLines returns one // comment per line of s.
func commentLines(s string) []jen.Code {
	var c []jen.Code
	for _, l := range strings.Split(s, "\n") {
		c = append(c, jen.Comment(l))
	}
	return c
}
