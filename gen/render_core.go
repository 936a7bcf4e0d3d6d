package gen

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/dave/jennifer/jen"

	"github.com/pop3kit/pop3kit/spec"
)

// rt is the import path of the runtime that generated code imports.
const rt = "github.com/pop3kit/pop3kit/pop3"

// rtq returns the runtime's name id, qualified.
func rtq(id string) *jen.Statement { return jen.Qual(rt, id) }

// inRuntime reports whether the runtime declares variation name: the
// runtime's variations are the standard table's (pop3/table.go is rendered
// from spec.POP3), so a table's own rows are those spec.POP3 lacks.
func (g *gen) inRuntime(name string) bool {
	if g.runtime {
		return true
	}
	return spec.POP3.Variation(name) != nil
}

// ownVariations returns the table's variations the runtime does not have.
func (g *gen) ownVariations() []spec.Variation {
	var out []spec.Variation
	for _, v := range g.t.Variations {
		if !g.inRuntime(v.Name) {
			out = append(out, v)
		}
	}
	return out
}

// errorInRuntime reports whether the runtime declares the error, response
// code or limit called name (its declarations are the standard table's).
func (g *gen) errorInRuntime(kind, name string) bool {
	if g.runtime {
		return true
	}
	switch kind {
	case "err":
		return slices.ContainsFunc(spec.POP3.Errors, func(e spec.Error) bool { return e.Name == name })
	case "code":
		return slices.ContainsFunc(spec.POP3.RespCodes, func(r spec.RespCode) bool { return r.Name == name })
	}
	return slices.ContainsFunc(spec.POP3.Limits, func(l spec.Limit) bool { return l.Name == name })
}

// id returns a runtime-level name as the file being rendered spells it:
// bare in the runtime, qualified in a generated package.
func (g *gen) id(name string) *jen.Statement {
	if g.runtime {
		return jen.Id(name)
	}
	return rtq(name)
}

// codeRef returns the identifier of a response code, wherever it lives.
func (g *gen) codeRef(name string) *jen.Statement {
	if g.errorInRuntime("code", name) {
		return g.id("Code" + name)
	}
	return jen.Id("Code" + name)
}

var argsIDs = []string{"NoArgs", "MsgNum", "OptMsgNum", "MsgNumCount", "Word", "Secret", "NameDigest", "Mechanism", "OptWord"}

// cond names the function that reads boolean variation name from a dialect.
func cond(name string) string { return "when" + name }

// protocol renders the command table as the runtime serves it: the Cmd
// constants, one row a command, the capability rows, the perfect-hash
// keyword lookup and the adapters that call the Handler.
func (g *gen) protocol() *jen.File {
	f := g.file("commands, capabilities, keyword lookup")

	defs := []jen.Code{}
	for i, c := range g.t.Commands {
		d := jen.Id(cmdID(c.Name))
		if i == 0 {
			d = d.Qual(rt, "Cmd").Op("=").Iota().Op("+").Lit(1)
		}
		defs = append(defs, commentLines(wrap(cmdID(c.Name)+": "+c.Doc+" "+provenance(c.Name, c.Clauses)))...)
		defs = append(defs, d)
	}
	comment(f, "The commands of the table, as the runtime numbers them.")
	f.Const().Defs(defs...)

	// Rows.
	conds := map[string]bool{}
	use := func(v string) jen.Code { conds[v] = true; return jen.Id(cond(v)) }
	rows := []jen.Code{jen.Values()}
	for _, c := range g.t.Commands {
		r := []jen.Code{jen.Id("Name").Op(":").Lit(c.Name)}
		if c.Args != spec.NoArgs {
			r = append(r, jen.Id("Args").Op(":").Add(rtq(argsIDs[c.Args])))
		}
		r = append(r, jen.Id("In").Op(":").Add(g.rtStateSet(c.In)))
		// Who answers is not written: the runtime answers the commands
		// it knows by keyword (pop3.CoreCommands), which spec.Validate
		// holds the table's Answer column to.
		for _, e := range c.Edges {
			r = append(r, jen.Id("From").Op(":").Add(g.rtStateSet(e.From)), jen.Id("To").Op(":").Add(g.rtStateSet(e.To)))
		}
		switch c.Then {
		case spec.Close:
			r = append(r, jen.Id("Then").Op(":").Add(rtq("ActionClose")))
		case spec.StartTLS:
			r = append(r, jen.Id("Then").Op(":").Add(rtq("ActionStartTLS")))
		}
		if c.Sets == spec.UTF8Mode {
			r = append(r, jen.Id("Sets").Op(":").Add(rtq("ModeUTF8")))
		}
		switch c.Guard {
		case spec.NotTLS:
			r = append(r, jen.Id("Guard").Op(":").Add(rtq("NotTLS")))
		case spec.Plaintext:
			r = append(r, jen.Id("Guard").Op(":").Add(rtq("Plaintext")))
		}
		if c.After != "" {
			r = append(r, jen.Id("After").Op(":").Id(cmdID(c.After)))
		}
		if c.LongArgs {
			r = append(r, jen.Id("Long").Op(":").True())
		}
		if c.Reply == spec.MultiLine || c.Reply == spec.MultiUnlessArg {
			r = append(r, jen.Id("Multi").Op(":").True())
		}
		if c.Capability != "" {
			r = append(r, jen.Id("Capability").Op(":").Lit(c.Capability))
		}
		if c.EnabledBy != "" {
			r = append(r, jen.Id("Enabled").Op(":").Add(use(c.EnabledBy)))
		}
		if c.AlwaysOKWhen != "" {
			r = append(r, jen.Id("AlwaysOK").Op(":").Add(use(c.AlwaysOKWhen)))
		}
		if c.AfterAnyWhen != "" {
			r = append(r, jen.Id("AfterAny").Op(":").Add(use(c.AfterAnyWhen)))
		}
		if c.IgnoresArgsWhen != "" {
			r = append(r, jen.Id("IgnoreArgs").Op(":").Add(use(c.IgnoresArgsWhen)))
		}
		if c.Answer == spec.ByHandler && c.Args != spec.Mechanism {
			if optional(c) {
				r = append(r, jen.Id("Serves").Op(":").Id("serves"+hmethod(c.Name)))
			}
			r = append(r, jen.Id("Call").Op(":").Id("call"+hmethod(c.Name)))
		}
		rows = append(rows, jen.Id(cmdID(c.Name)).Op(":").Add(values(r)))
	}
	var caps []jen.Code
	for _, c := range g.t.Capabilities {
		r := []jen.Code{jen.Id("Tag").Op(":").Lit(c.Tag)}
		if c.When != "server" {
			line := c.Tag
			if c.Params != "" && !strings.Contains(c.Params, "|") {
				line += " " + c.Params
			}
			r = append(r, jen.Id("Line").Op(":").Lit(line))
		}
		if c.When != "always" && c.When != "server" {
			r = append(r, jen.Id("When").Op(":").Add(use(c.When)))
		}
		caps = append(caps, values(r))
	}
	comment(f, "protocol is the table as the runtime serves it (Variations.Protocol).")
	f.Var().Id("protocol").Op("=").Qual(rt, "Protocol").Values(jen.DictFunc(func(d jen.Dict) {
		d[jen.Id("Lookup")] = jen.Id("lookup")
		d[jen.Id("Handler")] = jen.Id("isHandler")
		d[jen.Id("Commands")] = jen.Index().Qual(rt, "CommandRow").Add(perLine(rows))
		d[jen.Id("Capabilities")] = jen.Index().Qual(rt, "CapabilityRow").Add(perLine(caps))
	}))

	// The variations rows read.
	names := make([]string, 0, len(conds))
	for n := range conds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		f.Func().Id(cond(n)).Params(jen.Id("d").Qual(rt, "Dialect")).Bool().Block(
			jen.Return(jen.Id("d").Assert(jen.Op("*").Id("Variations")).Dot(n)))
	}

	g.lookup(f)
	return f
}

// rtStateSet returns the runtime's expression of a set of states.
func (g *gen) rtStateSet(set spec.State) jen.Code {
	var ids []jen.Code
	for _, s := range g.t.States {
		if set&s.State != 0 {
			ids = append(ids, rtq(stateID(s)))
		}
	}
	var c *jen.Statement
	for i, id := range ids {
		if i == 0 {
			c = jen.Add(id)
		} else {
			c = c.Op("|").Add(id)
		}
	}
	return c
}

// keywordKey packs a keyword as the runtime's lookup takes it: one octet a
// byte, letters folded to lower case.
func keywordKey(name string) (uint32, int) {
	var k uint32
	for i := 0; i < len(name); i++ {
		k = k<<8 | uint32(name[i]|0x20)
	}
	return k, len(name)
}

// lookup renders the perfect hash from a packed keyword to its command.
func (g *gen) lookup(f *jen.File) {
	keys := make([]uint32, len(g.t.Commands))
	for i, c := range g.t.Commands {
		keys[i], _ = keywordKey(c.Name)
	}
	mul, shift := perfectHash(keys)
	type kc struct {
		h   uint32
		key uint32
		c   spec.Command
	}
	var all []kc
	for i, c := range g.t.Commands {
		all = append(all, kc{keys[i] * mul >> shift, keys[i], c})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].h < all[j].h })
	var cases []jen.Code
	for _, k := range all {
		cases = append(cases, jen.Case(jen.Lit(int(k.h))).Block(
			jen.If(jen.Id("key").Op("==").Id(fmt.Sprintf("0x%08x", k.key))).Block(jen.Return(jen.Id(cmdID(k.c.Name))))))
	}
	comment(f, fmt.Sprintf(`lookup returns the command whose keyword is packed in key, or CmdNone: a
perfect hash, the multiplier chosen by the generator so that no two
keywords share a case. The runtime compares the octets that are not
letters (the 8 of UTF8) itself.`))
	f.Func().Id("lookup").Params(jen.Id("key").Uint32()).Qual(rt, "Cmd").Block(
		jen.Switch(jen.Id("key").Op("*").Id(fmt.Sprintf("0x%08x", mul)).Op(">>").Lit(int(shift))).Block(cases...),
		jen.Return(rtq("CmdNone")),
	)
}

// handlers renders the Handler interfaces and the adapters by which the
// runtime calls them.
func (g *gen) handlers() *jen.File {
	f := g.file("Handler interfaces")
	var methods []jen.Code
	var opt []spec.Command
	var core []string
	for _, c := range g.t.Commands {
		switch {
		case c.Answer != spec.ByHandler:
			core = append(core, c.Name)
			continue
		case c.Args == spec.Mechanism:
			continue // pop3.AuthHandler
		case optional(c):
			opt = append(opt, c)
			continue
		}
		methods = append(methods, commentLines(wrap(g.methodDoc(c)))...)
		methods = append(methods, jen.Comment(provenance(c.Name, c.Clauses)), g.signature(c))
	}
	comment(f, wrap(`Handler is the backend of one connection: what only a server knows, who
a user is and what their maildrop holds. Server.NewHandler returns one per
connection. Its required methods are the commands no runtime can answer; the
runtime answers `+strings.Join(core, ", ")+` itself, from the
session and from the Maildrop a login returns, and writes, terminates and
dot-stuffs every reply. The optional interfaces (pop3.AuthHandler, …) add
commands; a Handler that also implements io.Closer is closed when the
connection ends. A method is called only for a command that parsed,
is enabled and is allowed in the current state.`))
	f.Type().Id("Handler").Interface(methods...)
	for _, c := range opt {
		doc := optionalIface(c) + " is implemented by a Handler that serves " + c.Name + ", which " + lowerFirst(c.Doc) + " It is optional: without it " + c.Name + " is refused as not supported and not announced"
		if c.EnabledBy != "" {
			doc += ", whatever the " + c.EnabledBy + " variation says"
		}
		comment(f, wrap(doc+"."))
		f.Type().Id(optionalIface(c)).Interface(append(commentLines(wrap(g.methodDoc(c))), jen.Comment(provenance(c.Name, c.Clauses)), g.signature(c))...)
	}

	comment(f, "isHandler reports whether h is a Handler of this table.")
	f.Func().Id("isHandler").Params(jen.Id("h").Qual(rt, "Handler")).Bool().Block(
		jen.List(jen.Id("_"), jen.Id("ok")).Op(":=").Id("h").Assert(jen.Id("Handler")),
		jen.Return(jen.Id("ok")))
	for _, c := range g.t.Commands {
		if c.Answer != spec.ByHandler || c.Args == spec.Mechanism {
			continue
		}
		iface := "Handler"
		if optional(c) {
			iface = optionalIface(c)
			f.Func().Id("serves"+hmethod(c.Name)).Params(jen.Id("h").Qual(rt, "Handler")).Bool().Block(
				jen.List(jen.Id("_"), jen.Id("ok")).Op(":=").Id("h").Assert(jen.Id(iface)),
				jen.Return(jen.Id("ok")))
		}
		var a []jen.Code
		if g.opens(c) {
			if g.followsWord(c) {
				a = append(a, jen.Id("user"))
			}
		} else {
			a = append(a, jen.Id("w"))
		}
		a = append(a, args(c)...)
		call := jen.Id("h").Assert(jen.Id(iface)).Dot(hmethod(c.Name)).Call(a...)
		var body jen.Code
		if g.opens(c) {
			body = jen.Return(call)
		} else {
			body = jen.Return(jen.Nil(), call)
		}
		f.Func().Id("call"+hmethod(c.Name)).Params(jen.Id("h").Qual(rt, "Handler"), jen.Id("w").Op("*").Qual(rt, "Writer"),
			jen.Id("c").Op("*").Qual(rt, "Command"), jen.Id("user").Index().Byte()).Params(jen.Qual(rt, "Maildrop"), jen.Error()).Block(body)
	}
	return f
}

// maxLine is the longest line the generator writes, indentation counted as
// four columns a tab.
const maxLine = 160

// values returns a row's composite literal on one line when it fits within
// maxLine (with room for two levels of indentation and a key), else with a
// field a line.
func values(fields []jen.Code) jen.Code {
	if s := jen.Id("T").Values(fields...).GoString(); !strings.Contains(s, "\n") && len(s)+24 <= maxLine {
		return jen.Values(fields...)
	}
	// Pack the fields into lines of at most maxLine, in order.
	return jen.ValuesFunc(func(g *jen.Group) {
		width := 0
		for _, f := range fields {
			n := len(jen.Id("T").Values(f).GoString()) - 3 + 2 // "T{", "}"; ", "
			if width == 0 || width+n > maxLine-24 {
				g.Line().Add(f)
				width = n
			} else {
				g.Add(f)
				width += n
			}
		}
		g.Line()
	})
}

// text returns a string literal, as a sum of pieces a line each when it
// would not fit within maxLine.
func text(s string) jen.Code {
	const width = 130
	if len(s) <= width {
		return jen.Lit(s)
	}
	var parts []string
	for len(s) > width {
		cut := strings.LastIndexByte(s[:width], ' ')
		if cut <= 0 {
			cut = width
		}
		parts = append(parts, s[:cut+1])
		s = s[cut+1:]
	}
	if s != "" {
		parts = append(parts, s)
	}
	c := jen.Lit(parts[0])
	for _, p := range parts[1:] {
		c = c.Op("+").Line().Lit(p)
	}
	return c
}
