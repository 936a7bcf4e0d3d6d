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

// handlerArgs returns the arguments of c's Handler method.
func (g *gen) handlerArgs(c spec.Command) []jen.Code {
	var a []jen.Code
	if g.opens(c) {
		if g.followsWord(c) {
			a = append(a, jen.Id("s").Dot("user"))
		}
	} else {
		a = append(a, jen.Id("s").Dot("w"))
	}
	return append(a, args(c)...)
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

// kept reports whether another command follows c and gets its argument.
func (g *gen) kept(c spec.Command) bool {
	for _, o := range g.t.Commands {
		if o.After == c.Name && g.followsWord(o) && g.opens(o) {
			return true
		}
	}
	return false
}

// optional reports whether c's Handler method is an optional interface.
func optional(c spec.Command) bool {
	return c.Answer == spec.ByHandler && (c.Optional || c.EnabledBy != "")
}

// coreMethod returns the Session method by which the core answers c.
func coreMethod(c spec.Command) string { return strings.ToLower(c.Name) }

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
const openDoc = " Return the user's maildrop, opened as the MaildropAccess variation says; the core writes the +OK with its totals and serves the TRANSACTION commands from it. An error refuses the login: an *Error as it is, any other as ErrInternal."

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
func (g *gen) session() *jen.File {
	f := g.file("state machine and dispatch")

	// Handler: the required methods; one optional interface per optional
	// command.
	var methods []jen.Code
	var opt []spec.Command
	var core []string
	for _, c := range g.t.Commands {
		switch {
		case c.Answer != spec.ByHandler:
			core = append(core, c.Name)
			continue
		case optional(c):
			opt = append(opt, c)
			continue
		}
		methods = append(methods, commentLines(wrap(g.methodDoc(c)))...)
		methods = append(methods, jen.Comment(provenance(c.Name, c.Clauses)), g.signature(c))
	}
	comment(f, wrap(`Handler is the backend of one connection: what only a server knows, who
a user is and what their maildrop holds. Server.NewHandler returns one per
connection. Its required methods are the commands no core can answer; the
core answers `+strings.Join(core, ", ")+` itself, from the
session and from the Maildrop a login returns, and writes, terminates and
dot-stuffs every reply. The optional interfaces below (AuthHandler, …) add
commands; a Handler that also implements io.Closer is closed when the
connection ends. The Session calls a method only for a command that parsed,
is enabled and is allowed in the current state. A new command in the spec
table adds a method here or an optional interface.`))
	f.Type().Id("Handler").Interface(methods...)
	for _, c := range opt {
		doc := optionalIface(c) + " is implemented by a Handler that serves " + c.Name + ", which " + lowerFirst(c.Doc) + " It is optional: without it " + c.Name + " is refused as not supported and not announced"
		if c.EnabledBy != "" {
			doc += ", whatever the " + c.EnabledBy + " variation says"
		}
		doc += "."
		comment(f, wrap(doc))
		var m []jen.Code
		if c.Args == spec.Mechanism {
			m = append(m, commentLines(wrap("Mechanisms lists the SASL mechanisms "+c.Name+" offers on this connection now, upper case: CAPA's SASL line and a bare "+c.Name+" (AuthListing) list them, and any other is refused before "+hmethod(c.Name)+" is called."))...)
			m = append(m, jen.Comment(provenance(c.Name, c.Clauses)), jen.Id("Mechanisms").Params().Index().String())
			m = append(m, commentLines(wrap(hmethod(c.Name)+" starts an exchange of mechanism, upper case, one that Mechanisms lists, and returns its server side. The core runs it: base64, the initial response and \"=\", challenges and continuations, \"*\" cancel, line limits. An error (an *Error such as ErrPlaintextRefused) refuses the exchange."))...)
			m = append(m, jen.Comment(provenance(c.Name, c.Clauses)), jen.Id(hmethod(c.Name)).Params(jen.Id("mechanism").String()).Params(jen.Id("SASLServer"), jen.Error()))
			m = append(m, commentLines(wrap("Authenticated is called when the exchange succeeded, for the user it authenticated."+openDoc))...)
			m = append(m, jen.Comment(provenance(c.Name, c.Clauses)), jen.Id("Authenticated").Params().Params(jen.Id("Maildrop"), jen.Error()))
		} else {
			m = append(m, commentLines(wrap(g.methodDoc(c)))...)
			m = append(m, jen.Comment(provenance(c.Name, c.Clauses)), g.signature(c))
		}
		f.Type().Id(optionalIface(c)).Interface(m...)
	}

	// Action.
	comment(f, "Action is what the connection does after Feed.")
	f.Type().Id("Action").Uint8()
	defs := []jen.Code{
		jen.Comment("ActionContinue: read the next line."),
		jen.Id("ActionContinue").Id("Action").Op("=").Iota(),
		jen.Comment("ActionClose: flush the replies and close the connection."),
		jen.Id("ActionClose"),
	}
	defs = append(defs, commentLines("ActionStartTLS: flush, discard every byte the client sent after the command\n(RFC 2595 §4; the STARTTLS command-injection class), run the TLS handshake,\nthen call TLSStarted.")...)
	f.Const().Defs(append(defs, jen.Id("ActionStartTLS"))...)

	// Session struct and accessors.
	comment(f, `Session is the state machine of one POP3 connection. It is not safe for
concurrent use; a connection has one goroutine.`)
	f.Type().Id("Session").Struct(
		jen.Comment("the variations in force, with the optional commands the Handler lacks off"),
		jen.Id("v").Id("Variations"),
		jen.Id("h").Id("Handler"),
		jen.Id("w").Op("*").Id("Writer"),
		jen.Id("state").Id("State"),
		jen.Id("mode").Id("Mode"),
		jen.Id("last").Id("Cmd").Comment("the last command that succeeded, for After"),
		jen.Id("sasl").Bool().Comment("inside an AUTH exchange"),
		jen.Id("saslCmd").Id("Cmd").Comment("the command whose exchange it is"),
		jen.Id("saslSrv").Id("SASLServer").Comment("the exchange's server side"),
		jen.Id("saslBuf").Index().Byte().Comment("decoded responses, reused"),
		jen.Id("saslOut").Index().Byte().Comment("encoded challenges, reused"),
		jen.Id("offerTLS").Bool().Comment("STLS can start TLS (SetTLS)"),
		jen.Id("needTLS").Bool().Comment("no authentication before TLS (SetTLS)"),
		jen.Id("bad").Int().Comment("consecutive rejected commands"),
		jen.Id("cmd").Id("Command").Comment("the command being parsed, kept here so that Feed does not allocate"),
		jen.Id("stay").Bool().Comment("the command succeeded without taking its edge"),
		jen.Id("done").Uint64().Comment("bit 1<<Cmd of each command that last succeeded in this state, for AfterAnyWhen"),
		jen.Id("user").Index().Byte().Comment("the argument a login gets from the command before it (USER's, for PASS)"),
		jen.Id("md").Id("Maildrop").Comment("the maildrop a login opened; nil before"),
		jen.Id("deleted").Index().Bool().Comment("the messages marked deleted, by index"),
		jen.Id("missing").Uint64().Comment("bit 1<<Cmd of each optional command the Handler does not serve"),
		jen.Id("ev").Id("Event").Comment("the command being answered and how (Server.Observe)"),
		jen.Id("stats").Id("SessionStats").Comment("what the session did, for its logout line"),
		jen.Id("cr").Id("countReader").Comment("counts the octets of a message sent, reused"),
		jen.Id("log").Op("*").Qual("log/slog", "Logger").Comment("the connection's: backend errors are logged with their command"),
		jen.Id("admit").Func().Params(jen.Id("user").String()).Op("*").Id("Error").Comment("the runtime's per-user limit (Conn.Login); nil: none"),
	)
	initial := ""
	for _, s := range g.t.States {
		if s.Initial {
			initial = stateID(s)
		}
	}
	var offCmds []jen.Code
	for _, c := range g.t.Commands {
		if optional(c) && c.EnabledBy == "" && c.Capability != "" && c.Args != spec.Mechanism {
			offCmds = append(offCmds, jen.If(jen.List(jen.Id("_"), jen.Id("ok")).Op(":=").Id("h").Assert(jen.Id(optionalIface(c))), jen.Op("!").Id("ok")).Block(
				jen.Id("missing").Op("|=").Lit(1).Op("<<").Id(cmdID(c.Name))))
		}
		if optional(c) && c.EnabledBy != "" {
			offCmds = append(offCmds, jen.If(jen.List(jen.Id("_"), jen.Id("ok")).Op(":=").Id("h").Assert(jen.Id(optionalIface(c))), jen.Op("!").Id("ok")).Block(
				jen.Id("v").Dot(c.EnabledBy).Op("=").False()))
		}
	}
	comment(f, "NewSession returns a session in the initial state that answers through w.\nThe greeting is the server's to write. A command whose optional interface\nh does not implement is switched off in the session's variations, so that\nit is neither served nor announced.")
	f.Func().Id("NewSession").Params(jen.Id("h").Id("Handler"), jen.Id("w").Op("*").Id("Writer"), jen.Id("v").Id("Variations")).Op("*").Id("Session").Block(
		append(append([]jen.Code{jen.Var().Id("missing").Uint64()}, offCmds...),
			jen.Id("w").Dot("SetTerse").Call(jen.Op("!").Id("v").Dot("InformativeErrors")),
			jen.Return(jen.Op("&").Id("Session").Values(jen.Id("v").Op(":").Id("v"), jen.Id("h").Op(":").Id("h"), jen.Id("w").Op(":").Id("w"), jen.Id("state").Op(":").Id(initial), jen.Id("missing").Op(":").Id("missing"))))...,
	)
	comment(f, "Variations returns the variations the session runs under, with the\noptional commands its Handler lacks switched off. They must not be\nchanged.")
	f.Func().Params(jen.Id("s").Op("*").Id("Session")).Id("Variations").Params().Op("*").Id("Variations").Block(jen.Return(jen.Op("&").Id("s").Dot("v")))
	comment(f, "State returns the current state.")
	f.Func().Params(jen.Id("s").Op("*").Id("Session")).Id("State").Params().Id("State").Block(jen.Return(jen.Id("s").Dot("state")))
	comment(f, "Mode returns the session's modes.")
	f.Func().Params(jen.Id("s").Op("*").Id("Session")).Id("Mode").Params().Id("Mode").Block(jen.Return(jen.Id("s").Dot("mode")))
	comment(f, "SetMode switches modes on: ModeTLS for implicit TLS, ModeSecure for a\nconnection the server trusts (loopback).")
	f.Func().Params(jen.Id("s").Op("*").Id("Session")).Id("SetMode").Params(jen.Id("m").Id("Mode")).Block(jen.Id("s").Dot("mode").Op("|=").Id("m"))
	comment(f, "InSASL reports whether the next line answers a SASL challenge.")
	f.Func().Params(jen.Id("s").Op("*").Id("Session")).Id("InSASL").Params().Bool().Block(jen.Return(jen.Id("s").Dot("sasl")))
	comment(f, "MaxLine returns the longest line, CRLF included, that the next Feed\naccepts: a reader needs to buffer no more than this and can drop the rest\nof a longer line (Feed it a prefix longer than this to have it refused).")
	f.Func().Params(jen.Id("s").Op("*").Id("Session")).Id("MaxLine").Params().Int().Block(
		jen.If(jen.Id("s").Dot("sasl")).Block(jen.Return(jen.Id("s").Dot("v").Dot("MaxSASLOctets"))),
		jen.Comment("An AUTH line may run to MaxAuthLineOctets; Parse holds every other command to MaxCommandOctets."),
		jen.Return(jen.Max(jen.Id("s").Dot("v").Dot("MaxCommandOctets"), jen.Id("s").Dot("v").Dot("MaxAuthLineOctets"))),
	)
	comment(f, "IdleTimeout returns the inactivity timer in force: UnauthTimeout before\nlogin, AuthTimeout after (MS-STANXPOP3 V0002). Any line resets it.")
	f.Func().Params(jen.Id("s").Op("*").Id("Session")).Id("IdleTimeout").Params().Qual("time", "Duration").Block(
		jen.If(jen.Id("s").Dot("state").Op("==").Id(initial)).Block(jen.Return(jen.Id("s").Dot("v").Dot("UnauthTimeout"))),
		jen.Return(jen.Id("s").Dot("v").Dot("AuthTimeout")),
	)
	comment(f, "Autologout is called when the inactivity timer expires. It writes the\nnotice where TimeoutNotice is on (MS-STANXPOP3 V0003) and nothing where it\nis off (RFC 1939 §3). The session does not enter UPDATE: close the\nconnection without removing any message.")
	f.Func().Params(jen.Id("s").Op("*").Id("Session")).Id("Autologout").Params().Block(
		jen.If(jen.Id("s").Dot("v").Dot("TimeoutNotice")).Block(jen.Id("s").Dot("w").Dot("Error").Call(jen.Id("ErrAutologout"))),
	)
	comment(f, "PlaintextAllowed reports whether USER/PASS (and plaintext SASL) may be\nused on this connection (PlaintextAuth, MS-STANXPOP3 V0010).")
	f.Func().Params(jen.Id("s").Op("*").Id("Session")).Id("PlaintextAllowed").Params().Bool().Block(
		jen.Switch(jen.Id("s").Dot("v").Dot("PlaintextAuth")).Block(
			jen.Case(jen.Id("PlaintextAuthAlways")).Block(jen.Return(jen.True())),
			jen.Case(jen.Id("PlaintextAuthSecure")).Block(jen.Return(jen.Id("s").Dot("mode").Op("&").Parens(jen.Id("ModeTLS").Op("|").Id("ModeSecure")).Op("!=").Lit(0))),
		),
		jen.Return(jen.False()),
	)
	comment(f, "PlaintextRefusal returns the refusal of plaintext authentication that\nfits the PlaintextAuth variation: ErrPlaintextDisabled where it is never\nallowed, ErrPlaintextRefused where only secure connections may use it\n(MS-STANXPOP3 V0010). A handler that refuses a plaintext SASL mechanism\nmay return either error: the session sends this one.")
	f.Func().Params(jen.Id("s").Op("*").Id("Session")).Id("PlaintextRefusal").Params().Op("*").Id("Error").Block(
		jen.If(jen.Id("s").Dot("v").Dot("PlaintextAuth").Op("==").Id("PlaintextAuthNever")).Block(jen.Return(jen.Id("ErrPlaintextDisabled"))),
		jen.Return(jen.Id("ErrPlaintextRefused")),
	)
	comment(f, "SetTLS tells the session what its connection offers: offer, that STLS can\nstart TLS; required, that no authentication is accepted before TLS (the\nruntime's RequireTLS). pop3gen.Server calls it; CapaInfo uses it.")
	f.Func().Params(jen.Id("s").Op("*").Id("Session")).Id("SetTLS").Params(jen.List(jen.Id("offer"), jen.Id("required")).Bool()).Block(
		jen.List(jen.Id("s").Dot("offerTLS"), jen.Id("s").Dot("needTLS")).Op("=").List(jen.Id("offer"), jen.Id("required")),
	)
	capaBody := []jen.Code{
		jen.Id("c").Op(":=").Id("CapaInfo").Values(jen.Id("missing").Op(":").Id("s").Dot("missing")),
		jen.If(jen.Id("s").Dot("state").Op("!=").Id(initial)).Block(jen.Id("c").Dot("afterLogin").Op("=").True(), jen.Return(jen.Id("c"))),
		jen.Id("tls").Op(":=").Id("s").Dot("mode").Op("&").Id("ModeTLS").Op("!=").Lit(0),
		jen.Id("auth").Op(":=").Id("tls").Op("||").Op("!").Id("s").Dot("needTLS"),
		jen.Id("c").Dot("Plaintext").Op("=").Id("auth").Op("&&").Id("s").Dot("PlaintextAllowed").Call(),
		jen.Id("c").Dot("STLS").Op("=").Id("s").Dot("offerTLS").Op("&&").Op("!").Id("tls"),
	}
	for _, c := range g.t.Commands {
		if c.Args == spec.Mechanism && c.Answer == spec.ByHandler {
			capaBody = append(capaBody, jen.If(jen.List(jen.Id("h"), jen.Id("ok")).Op(":=").Id("s").Dot("h").Assert(jen.Id(optionalIface(c))), jen.Id("ok").Op("&&").Id("auth")).Block(
				jen.Id("c").Dot("SASL").Op("=").Id("s").Dot("offered").Call(jen.Id("h"))))
		}
	}
	capaBody = append(capaBody, jen.Return(jen.Id("c")))
	comment(f, "CapaInfo returns what CAPA announces that the session knows, for the\ncurrent state (RFC 2449 §5: CAPA lists what applies now): before login,\nUSER where plaintext logins are allowed, SASL with the handler's\nmechanisms, STLS where TLS can start; after login, none of them. The\nserver adds what only it knows (Implementation, Expire, LoginDelay) and\nhands the result to WriteCapa, with the session's variations (in which\nthe commands the handler does not serve are off).")
	f.Func().Params(jen.Id("s").Op("*").Id("Session")).Id("CapaInfo").Params().Id("CapaInfo").Block(capaBody...)
	comment(f, "TLSStarted is called after the handshake that STLS began. The session\nforgets what it learned before TLS (RFC 2595 §4) and stays in\nAUTHORIZATION.")
	f.Func().Params(jen.Id("s").Op("*").Id("Session")).Id("TLSStarted").Params().Block(
		jen.Id("s").Dot("mode").Op("|=").Id("ModeTLS").Op("|").Id("ModeSecure"),
		jen.Id("s").Dot("last").Op("=").Id("CmdNone"),
		jen.Id("s").Dot("done").Op("=").Lit(0),
		jen.Id("s").Dot("state").Op("=").Id(initial),
	)

	// Feed.
	comment(f, `Feed processes one line as read from the client (with its CRLF, a bare LF
or none) and writes the reply. Pipelined commands are fed one line at a
time and answered in order. Feed never keeps line.`)
	f.Func().Params(jen.Id("s").Op("*").Id("Session")).Id("Feed").Params(jen.Id("line").Index().Byte()).Id("Action").Block(
		jen.Id("s").Dot("w").Dot("markCommand").Call(),
		jen.Id("s").Dot("ev").Op("=").Id("Event").Values(),
		jen.If(jen.Id("s").Dot("sasl")).Block(jen.Return(jen.Id("s").Dot("saslStep").Call(jen.Id("line")))),
		jen.If(jen.Id("err").Op(":=").Id("s").Dot("cmd").Dot("Parse").Call(jen.Id("line"), jen.Op("&").Id("s").Dot("v"), jen.Id("s").Dot("mode")), jen.Id("err").Op("!=").Nil()).Block(jen.Return(jen.Id("s").Dot("reject").Call(jen.Id("err")))),
		jen.Return(jen.Id("s").Dot("Dispatch").Call(jen.Op("&").Id("s").Dot("cmd"))),
	)

	// Dispatch.
	var enabledCases, cases, thenCases, setCases []jen.Code
	for _, c := range g.t.Commands {
		if c.EnabledBy != "" {
			enabledCases = append(enabledCases, jen.Case(jen.Id(cmdID(c.Name))).Block(jen.Return(jen.Id("s").Dot("v").Dot(c.EnabledBy))))
		}
		var body []jen.Code
		body = append(body, jen.Comment(provenance(c.Name, c.Clauses)))
		if c.After != "" {
			cond := jen.Id("s").Dot("last").Op("!=").Id(cmdID(c.After))
			if c.AfterAnyWhen != "" {
				// AfterAnyWhen: an earlier success of After in this state will do.
				cond = cond.Op("&&").Op("!").Parens(jen.Id("s").Dot("v").Dot(c.AfterAnyWhen).Op("&&").Id("s").Dot("done").Op("&").Parens(jen.Lit(1).Op("<<").Id(cmdID(c.After))).Op("!=").Lit(0))
			}
			body = append(body, jen.If(cond).Block(jen.Return(jen.Id("s").Dot("reject").Call(jen.Id("ErrNeed"+method(c.After))))))
		}
		switch c.Guard {
		case spec.NotTLS:
			body = append(body, jen.If(jen.Id("s").Dot("mode").Op("&").Id("ModeTLS").Op("!=").Lit(0)).Block(jen.Return(jen.Id("s").Dot("reject").Call(jen.Id("ErrTLSActive")))))
		case spec.Plaintext:
			body = append(body, jen.If(jen.Op("!").Id("s").Dot("PlaintextAllowed").Call()).Block(jen.Return(jen.Id("s").Dot("reject").Call(jen.Id("s").Dot("PlaintextRefusal").Call()))))
		}
		if g.kept(c) {
			body = append(body, jen.Comment("Kept for the "+c.Name+" argument of the login that follows."),
				jen.Id("s").Dot("user").Op("=").Append(jen.Id("s").Dot("user").Index(jen.Empty(), jen.Lit(0)), jen.Id("c").Dot("Arg1").Op("...")))
		}
		h := jen.Id("s").Dot("h")
		if optional(c) {
			h = jen.Id("h")
			body = append(body,
				jen.List(jen.Id("h"), jen.Id("ok")).Op(":=").Id("s").Dot("h").Assert(jen.Id(optionalIface(c))),
				jen.If(jen.Op("!").Id("ok")).Block(jen.Return(jen.Id("s").Dot("reject").Call(jen.Id("ErrNotSupported")))))
		}
		switch {
		case hasFinalEdge(g, c):
			fs := stateID(g.finalState(c))
			body = append(body, jen.Comment("The edge leads to a final state: enter it, and run it there."),
				jen.Id("s").Dot("state").Op("=").Id(cmdID(c.Name)).Dot("Next").Call(jen.Id("s").Dot("state")),
				jen.If(jen.Id("s").Dot("state").Op("==").Id(fs)).Block(
					jen.Id("err").Op("=").Id("s").Dot(strings.ToLower(g.finalState(c).Name)).Call(),
				).Else().Block(
					jen.Id("err").Op("=").Id("s").Dot(coreMethod(c)).Call(args(c)...),
				))
		case c.Answer != spec.ByHandler:
			body = append(body, jen.Id("err").Op("=").Id("s").Dot(coreMethod(c)).Call(args(c)...))
		case c.Args == spec.Mechanism:
			// The SASL exchange is the core's (sasl.go).
			body = append(body, jen.Return(jen.Id("s").Dot("auth").Call(jen.Id(cmdID(c.Name)), h, jen.Id("c").Dot("Arg1"), jen.Id("c").Dot("Arg2"))))
		case g.opens(c):
			body = append(body,
				jen.List(jen.Id("md"), jen.Id("e")).Op(":=").Add(h).Dot(hmethod(c.Name)).Call(g.handlerArgs(c)...),
				jen.Id("err").Op("=").Id("s").Dot("open").Call(jen.Id("md"), jen.Id("e")))
		default:
			body = append(body, jen.Id("err").Op("=").Add(h).Dot(hmethod(c.Name)).Call(g.handlerArgs(c)...))
		}
		if c.Args == spec.Mechanism && c.Answer == spec.ByHandler {
			cases = append(cases, jen.Case(jen.Id(cmdID(c.Name))).Block(body...))
			continue
		}
		if c.AlwaysOKWhen != "" {
			body = append(body, jen.If(jen.Id("s").Dot("v").Dot(c.AlwaysOKWhen).Op("&&").Id("err").Op("!=").Nil().Op("&&").Id("s").Dot("w").Dot("lines").Call().Op("==").Lit(0)).Block(
				jen.Comment(c.AlwaysOKWhen+": "+c.Name+" never fails; the refusal comes later."),
				jen.Id("err").Op("=").Nil()))
		}
		cases = append(cases, jen.Case(jen.Id(cmdID(c.Name))).Block(body...))
		switch c.Then {
		case spec.Close:
			thenCases = append(thenCases, jen.Case(jen.Id(cmdID(c.Name))).Block(jen.Return(jen.Id("ActionClose"))))
		case spec.StartTLS:
			thenCases = append(thenCases, jen.Case(jen.Id(cmdID(c.Name))).Block(jen.Return(jen.Id("ActionStartTLS"))))
		}
		if c.Sets == spec.UTF8Mode {
			setCases = append(setCases, jen.Case(jen.Id(cmdID(c.Name))).Block(jen.Id("s").Dot("mode").Op("|=").Id("ModeUTF8")))
		}
	}
	comment(f, "enabled reports whether the variations switch c on.")
	f.Func().Params(jen.Id("s").Op("*").Id("Session")).Id("enabled").Params(jen.Id("c").Id("Cmd")).Bool().Block(
		jen.Switch(jen.Id("c")).Block(enabledCases...),
		jen.Return(jen.True()),
	)
	comment(f, "then returns what the connection does after c succeeded.")
	f.Func().Id("then").Params(jen.Id("c").Id("Cmd")).Id("Action").Block(
		jen.Switch(jen.Id("c")).Block(thenCases...),
		jen.Return(jen.Id("ActionContinue")),
	)
	// The state check: NeedAuth for commands of later states, AlreadyAuth otherwise.
	comment(f, `Dispatch runs a parsed command: it checks that the command is enabled and
allowed in the current state, applies the guards of the spec table, calls
the handler and takes the transition. Feed calls it; a server that reads
commands some other way may call it directly.`)
	f.Func().Params(jen.Id("s").Op("*").Id("Session")).Id("Dispatch").Params(jen.Id("c").Op("*").Id("Command")).Id("Action").Block(
		jen.Id("s").Dot("ev").Dot("Cmd").Op("=").Id("c").Dot("Cmd"),
		jen.If(jen.Op("!").Id("s").Dot("enabled").Call(jen.Id("c").Dot("Cmd"))).Block(jen.Return(jen.Id("s").Dot("reject").Call(jen.Id("ErrNotSupported")))),
		jen.If(jen.Op("!").Id("c").Dot("Cmd").Dot("AllowedIn").Call(jen.Id("s").Dot("state"))).Block(
			jen.If(jen.Id("s").Dot("state").Op("==").Id(initial)).Block(jen.Return(jen.Id("s").Dot("reject").Call(jen.Id("ErrNeedAuth")))),
			jen.Return(jen.Id("s").Dot("reject").Call(jen.Id("ErrAlreadyAuth"))),
		),
		jen.Var().Id("err").Error(),
		jen.Switch(jen.Id("c").Dot("Cmd")).Block(cases...),
		jen.If(jen.Id("err").Op("==").Nil()).Block(jen.Switch(jen.Id("c").Dot("Cmd")).Block(setCases...)),
		jen.Return(jen.Id("s").Dot("finish").Call(jen.Id("c").Dot("Cmd"), jen.Id("err"))),
	)

	// finish, reject, saslStep.
	comment(f, "finish writes the outcome of a handler call and takes the transition. A\n"+
		"handler that fails after its reply has begun (a status line, part of a\n"+
		"listing or of a message) cannot have -ERR written after it: that would\n"+
		"corrupt the client's stream, so the connection closes instead. A handler's\n"+
		"own refusal (no such message, a wrong password) is not a protocol error\n"+
		"and does not count toward MaxBadCommands; the core's plaintext refusal\n"+
		"does, wherever it comes from.")
	f.Func().Params(jen.Id("s").Op("*").Id("Session")).Id("finish").Params(jen.Id("c").Id("Cmd"), jen.Id("err").Error()).Id("Action").Block(
		jen.Id("s").Dot("sasl").Op("=").False(),
		jen.Id("s").Dot("logFailure").Call(jen.Id("c"), jen.Id("err")),
		jen.If(jen.Id("err").Op("!=").Nil().Op("&&").Id("s").Dot("w").Dot("lines").Call().Op(">").Lit(0)).Block(
			jen.Return(jen.Id("ActionClose")),
		),
		jen.If(jen.Id("err").Op("!=").Nil()).Block(
			jen.Id("s").Dot("stay").Op("=").False(),
			jen.Comment("A command that failed is no longer one that succeeded (a failed USER forgets the name)."),
			jen.Id("s").Dot("done").Op("&^=").Lit(1).Op("<<").Id("c"),
			forgets(g),
			jen.List(jen.Id("e"), jen.Id("ok")).Op(":=").Id("err").Assert(jen.Op("*").Id("Error")),
			jen.If(jen.Op("!").Id("ok")).Block(jen.Id("e").Op("=").Id("ErrInternal")),
			jen.Id("s").Dot("ev").Dot("Err").Op("=").Id("e"),
			jen.Var().Id("a").Id("Action"),
			jen.If(jen.Id("e").Op("==").Id("ErrPlaintextRefused").Op("||").Id("e").Op("==").Id("ErrPlaintextDisabled")).Block(
				jen.Id("a").Op("=").Id("s").Dot("reject").Call(jen.Id("s").Dot("PlaintextRefusal").Call()),
			).Else().Block(
				jen.Id("s").Dot("last").Op("=").Id("CmdNone"),
				jen.Id("s").Dot("w").Dot("Error").Call(jen.Id("e")),
			),
			jen.If(jen.Id("then").Call(jen.Id("c")).Op("==").Id("ActionClose")).Block(jen.Return(jen.Id("ActionClose"))),
			jen.Return(jen.Id("a")),
		),
		jen.Id("s").Dot("bad").Op("=").Lit(0),
		jen.If(jen.Id("s").Dot("w").Dot("continued").Call()).Block(
			jen.Id("s").Dot("sasl").Op("=").True(),
			jen.Return(jen.Id("ActionContinue")),
		),
		jen.If(jen.Id("s").Dot("w").Dot("lines").Call().Op("==").Lit(0)).Block(jen.Id("s").Dot("w").Dot("OK").Call(jen.Lit(""))),
		jen.Id("s").Dot("last").Op("=").Id("c"),
		jen.Id("s").Dot("done").Op("|=").Lit(1).Op("<<").Id("c"),
		jen.If(jen.Id("next").Op(":=").Id("c").Dot("Next").Call(jen.Id("s").Dot("state")), jen.Op("!").Id("s").Dot("stay").Op("&&").Id("next").Op("!=").Id("s").Dot("state")).Block(
			jen.List(jen.Id("s").Dot("state"), jen.Id("s").Dot("done")).Op("=").List(jen.Id("next"), jen.Lit(0))),
		jen.Id("s").Dot("stay").Op("=").False(),
		jen.Return(jen.Id("then").Call(jen.Id("c"))),
	)
	comment(f, "reject answers -ERR and counts the failure; after MaxBadCommands in a row\nit answers ErrTooManyErrors instead and closes (MS-STANXPOP3 C0005).")
	f.Func().Params(jen.Id("s").Op("*").Id("Session")).Id("reject").Params(jen.Id("e").Op("*").Id("Error")).Id("Action").Block(
		jen.Id("s").Dot("last").Op("=").Id("CmdNone"),
		jen.Id("s").Dot("bad").Op("++"),
		jen.Id("s").Dot("ev").Dot("Err").Op("=").Id("e"),
		jen.If(jen.Id("s").Dot("v").Dot("MaxBadCommands").Op(">").Lit(0).Op("&&").Id("s").Dot("bad").Op(">=").Id("s").Dot("v").Dot("MaxBadCommands")).Block(
			jen.Id("s").Dot("w").Dot("Error").Call(jen.Id("ErrTooManyErrors")),
			jen.Id("s").Dot("ev").Dot("Err").Op("=").Id("ErrTooManyErrors"),
			jen.Return(jen.Id("ActionClose")),
		),
		jen.Id("s").Dot("w").Dot("Error").Call(jen.Id("e")),
		jen.Return(jen.Id("ActionContinue")),
	)
	return f
}

// forgets returns the statements by which a failed command with
// AfterAnyWhen forgets the command it followed: a failed PASS needs a new
// USER, as Dovecot's pop3-login has it.
//
//	if c == CmdPASS { s.done &^= 1 << CmdUSER }
func forgets(g *gen) jen.Code {
	var stmts []jen.Code
	for _, c := range g.t.Commands {
		if c.AfterAnyWhen != "" {
			stmts = append(stmts, jen.If(jen.Id("c").Op("==").Id(cmdID(c.Name))).Block(
				jen.Comment("A failed "+c.Name+" needs a new "+c.After+" ("+c.AfterAnyWhen+")."),
				jen.Id("s").Dot("done").Op("&^=").Lit(1).Op("<<").Id(cmdID(c.After))))
		}
	}
	if len(stmts) == 0 {
		return jen.Null()
	}
	return jen.Add(stmts...)
}

// hasMechanism reports whether the table has a SASL command (AUTH).
func (g *gen) hasMechanism() bool {
	for _, c := range g.t.Commands {
		if c.Args == spec.Mechanism {
			return true
		}
	}
	return false
}

// finalState returns the final state c's edge leads to.
func (g *gen) finalState(c spec.Command) spec.StateInfo {
	for _, e := range c.Edges {
		if si := g.stateInfo(e.To); si.Final {
			return si
		}
	}
	return spec.StateInfo{}
}

func hasFinalEdge(g *gen, c spec.Command) bool {
	for _, e := range c.Edges {
		if g.stateInfo(e.To).Final {
			return true
		}
	}
	return false
}

// capa renders CapaInfo and WriteCapa from the capability table.
//
//	func WriteCapa(w *Writer, v *Variations, c *CapaInfo) {
//		w.Begin("Capability list follows")
//		w.Line("TOP") // spec: TOP — RFC2449-6.1-TOP
//		…
func (g *gen) capa() *jen.File {
	f := g.file("CAPA")
	comment(f, "CapaInfo carries what only the server knows for the CAPA reply.")
	f.Type().Id("CapaInfo").Struct(
		jen.Comment("Plaintext: USER/PASS is allowed on this connection (Session.PlaintextAllowed)."),
		jen.Id("Plaintext").Bool(),
		jen.Comment("SASL lists the mechanisms AUTH accepts here; none leaves SASL out."),
		jen.Id("SASL").Index().String(),
		jen.Comment("LoginDelay is the LOGIN-DELAY in seconds; 0 leaves it out."),
		jen.Id("LoginDelay").Int(),
		jen.Comment("Expire is the EXPIRE value (\"NEVER\" or days); empty leaves it out."),
		jen.Id("Expire").String(),
		jen.Comment("Implementation names the server; empty leaves it out."),
		jen.Id("Implementation").String(),
		jen.Comment("STLS: TLS is configured and not active yet."),
		jen.Id("STLS").Bool(),
		jen.Comment("Lines are lines of the server's own, written after the table's."),
		jen.Id("Lines").Index().String(),
		jen.Id("missing").Uint64().Comment("optional commands the Handler does not serve (Session.CapaInfo)"),
		jen.Id("afterLogin").Bool().Comment("past AUTHORIZATION: commands valid only before login are not announced"),
	)
	var body []jen.Code
	body = append(body, jen.Id("w").Dot("Begin").Call(jen.Lit("Capability list follows")))
	for _, c := range g.t.Capabilities {
		line := g.capaLine(c)
		var cond jen.Code
		switch c.When {
		case "always":
		case "server":
			switch c.Tag {
			case "USER", "STLS":
				cond = jen.Id("c").Dot(serverCapabilities[c.Tag])
			case "SASL":
				cond = jen.Len(jen.Id("c").Dot("SASL")).Op(">").Lit(0)
			case "LOGIN-DELAY":
				cond = jen.Id("c").Dot("LoginDelay").Op(">").Lit(0)
			default:
				cond = jen.Id("c").Dot(serverCapabilities[c.Tag]).Op("!=").Lit("")
			}
		default:
			cond = jen.Id("v").Dot(c.When)
		}
		for _, oc := range g.t.Commands {
			if oc.Capability == c.Tag && oc.In == spec.Authorization && c.When != "server" {
				// Valid only before login: not announced after it (RFC
				// 2449 §5: the list says what the client may use now).
				before := jen.Op("!").Id("c").Dot("afterLogin")
				if cond == nil {
					cond = before
				} else {
					cond = jen.Parens(cond).Op("&&").Add(before)
				}
			}
			if optional(oc) && oc.EnabledBy == "" && oc.Capability == c.Tag && oc.Args != spec.Mechanism {
				served := jen.Id("c").Dot("missing").Op("&").Parens(jen.Lit(1).Op("<<").Id(cmdID(oc.Name))).Op("==").Lit(0)
				if cond == nil {
					cond = served
				} else {
					cond = jen.Parens(cond).Op("&&").Add(served)
				}
			}
		}
		cm := jen.Comment(provenance(c.Tag, c.Clauses))
		if cond == nil {
			body = append(body, cm, line)
		} else {
			body = append(body, cm, jen.If(cond).Block(line))
		}
	}
	body = append(body, jen.For(jen.List(jen.Id("_"), jen.Id("l")).Op(":=").Range().Id("c").Dot("Lines")).Block(jen.Id("w").Dot("Line").Call(jen.Id("l"))))
	body = append(body, jen.Id("w").Dot("End").Call())
	comment(f, `WriteCapa writes the CAPA reply (RFC 2449 §5) from the capability table,
the variations v and what the server says in c.`)
	f.Func().Id("WriteCapa").Params(jen.Id("w").Op("*").Id("Writer"), jen.Id("v").Op("*").Id("Variations"), jen.Id("c").Op("*").Id("CapaInfo")).Block(body...)
	return f
}

func (g *gen) capaLine(c spec.Capability) jen.Code {
	switch c.Tag {
	case "SASL":
		return jen.Id("w").Dot("Words").Call(jen.Lit("SASL"), jen.Id("c").Dot("SASL").Op("..."))
	case "LOGIN-DELAY":
		return jen.Id("w").Dot("Words").Call(jen.Lit(c.Tag), jen.Qual("strconv", "Itoa").Call(jen.Id("c").Dot("LoginDelay")))
	case "EXPIRE", "IMPLEMENTATION":
		return jen.Id("w").Dot("Words").Call(jen.Lit(c.Tag), jen.Id("c").Dot(serverCapabilities[c.Tag]))
	}
	if c.Params != "" && c.When != "server" && !strings.Contains(c.Params, "|") {
		return jen.Id("w").Dot("Line").Call(jen.Lit(c.Tag + " " + c.Params))
	}
	return jen.Id("w").Dot("Line").Call(jen.Lit(c.Tag))
}

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
