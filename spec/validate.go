package spec

import (
	"fmt"
	"go/token"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/pop3kit/pop3kit/pop3"
)

// Problems is the error Validate returns: every problem it found, in table
// order (the order of the rows, then the cross-table checks), so that two
// runs over the same table print the same lines.
type Problems []error

// Error lists the problems, one a line.
func (p Problems) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "the spec table is inconsistent (%d problems):", len(p))
	for _, e := range p {
		b.WriteString("\n\t")
		b.WriteString(e.Error())
	}
	return b.String()
}

// Unwrap returns the problems, for errors.Is and errors.As.
func (p Problems) Unwrap() []error { return p }

// Validate is Validate(t).
func (t *Table) Validate() error { return Validate(t) }

// runtimeVariation is a variation the runtime declares (a field of
// pop3.Variations), as its Go type reads it.
type runtimeVariation struct {
	name   string
	kinds  []Kind   // the kinds a row may give it
	values []string // an enum's values, in order
}

// runtimeVariations reads the runtime's variations off pop3.Variations, so
// that what the runtime honours is named in one place, the runtime.
func runtimeVariations() []runtimeVariation {
	var out []runtimeVariation
	t := reflect.TypeFor[pop3.Variations]()
	for i := range t.NumField() {
		f := t.Field(i)
		rv := runtimeVariation{name: f.Name}
		switch {
		case f.Type == reflect.TypeFor[time.Duration]():
			rv.kinds = []Kind{Duration}
		case f.Type.Kind() == reflect.Bool:
			rv.kinds = []Kind{Bool}
		case f.Type.Kind() == reflect.Int:
			rv.kinds = []Kind{Octets, Count}
		case f.Type.Kind() == reflect.Uint8:
			rv.kinds = []Kind{Enum}
			x := reflect.New(f.Type).Elem()
			for n := range 256 {
				x.SetUint(uint64(n))
				name := x.Interface().(fmt.Stringer).String()
				if strings.Contains(name, "(") {
					break
				}
				rv.values = append(rv.values, name)
			}
		}
		out = append(out, rv)
	}
	return out
}

// Validate checks the table and returns every problem it finds as
// Problems, each naming the row ("command \"NOOP\" (row 14): …"), or nil.
// It checks what the generator relies on besides consistency: names that
// become Go identifiers are identifiers and do not collide, and the rows the
// core uses by name exist with the shape it expects.
func Validate(t *Table) error {
	v := &validator{t: t}
	v.clauses()
	v.states()
	v.profiles()
	v.variations()
	v.commands()
	v.capabilities()
	v.respCodes()
	v.errorRows()
	v.limits()
	v.layers()
	if len(v.errs) == 0 {
		return nil
	}
	return Problems(v.errs)
}

type validator struct {
	t    *Table
	errs []error

	clauseIDs map[string]Clause
	allStates State
	vars      map[string]Variation
	codes     map[string]bool // by wire code
	codeNames map[string]bool // by Name
	errNames  map[string]bool
	caps      map[string]bool
}

func (v *validator) bad(row, format string, args ...any) {
	v.errs = append(v.errs, fmt.Errorf("%s: %s", row, fmt.Sprintf(format, args...)))
}

func (v *validator) cite(row string, ids []string) {
	if len(ids) == 0 {
		v.bad(row, "cites no clause")
	}
	for _, id := range ids {
		if _, ok := v.clauseIDs[id]; !ok {
			v.bad(row, "cites clause %q, which the clause table does not define", id)
		}
	}
}

// ident checks that name, which the generator turns into a Go identifier,
// is one and is exported.
func (v *validator) ident(row, what, name string) {
	if !token.IsIdentifier(name) || !token.IsExported(name) {
		v.bad(row, "%s %q is not an exported Go identifier", what, name)
	}
}

func (v *validator) boolVar(row, what, name string) {
	if x, ok := v.vars[name]; !ok || x.Kind != Bool {
		v.bad(row, "%s %q, which is not a boolean variation", what, name)
	}
}

func (v *validator) clauses() {
	v.clauseIDs = map[string]Clause{}
	for i, c := range v.t.Clauses {
		row := fmt.Sprintf("clause %q (row %d)", c.ID, i+1)
		if c.ID == "" || strings.ContainsAny(c.ID, " \t|`") {
			v.bad(row, "id must be a non-empty word")
		}
		if prev, ok := v.clauseIDs[c.ID]; ok {
			if prev.Summary != c.Summary || prev.Behaviour != c.Behaviour {
				v.bad(row, "clause id used twice for different behaviour (%q vs %q)", prev.Behaviour, c.Behaviour)
			} else {
				v.bad(row, "clause defined twice")
			}
			continue
		}
		v.clauseIDs[c.ID] = c
		if c.Source == "" || c.Summary == "" || c.Behaviour == "" {
			v.bad(row, "source, summary and behaviour are required")
		}
		if c.Layer < Core || c.Layer > NotApplicable {
			v.bad(row, "layer is not set")
		}
		if c.Layer == NotApplicable && c.Pending != "" {
			v.bad(row, "a clause that does not apply cannot be pending")
		}
	}
}

func (v *validator) states() {
	initial := 0
	names := map[string]bool{}
	for i, s := range v.t.States {
		row := fmt.Sprintf("state %q (row %d)", s.Name, i+1)
		if s.State == 0 || s.State&(s.State-1) != 0 {
			v.bad(row, "state must be exactly one bit")
		}
		if v.allStates&s.State != 0 {
			v.bad(row, "state bit used twice")
		}
		v.allStates |= s.State
		if names[s.Name] {
			v.bad(row, "state name used twice")
		}
		names[s.Name] = true
		if !upperWord(s.Name) {
			v.bad(row, "name must be upper-case letters, as RFC 1939 spells states")
		}
		if s.Initial {
			initial++
		}
		v.cite(row, []string{s.Clause})
	}
	if initial != 1 {
		v.errs = append(v.errs, fmt.Errorf("states: exactly one state must be Initial, found %d", initial))
	}
}

func upperWord(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}

// lowerName reports whether s is a lower-case name of letters, digits and
// '-', starting with a letter: a profile name or alias, which the generated
// Profile matches after lower-casing its argument.
func lowerName(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// ProfileFunc returns the name of the generated function that returns a
// profile's variations: RFC1939 for "rfc1939", Exchange2010 for
// "exchange2010", MySite for "my-site".
func ProfileFunc(name string) string {
	var b strings.Builder
	up := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c == '-' {
			up = true
			continue
		}
		if up && 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		up = false
		b.WriteByte(c)
	}
	s := b.String()
	if strings.HasPrefix(s, "Rfc") {
		s = "RFC" + s[3:]
	}
	return s
}

// EnumConst returns the name of the generated constant for one value of an
// enum variation: MaildropAccessLock for MaildropAccess "lock".
func EnumConst(v Variation, value string) string {
	if value == "" {
		return v.Name
	}
	return v.Name + strings.ToUpper(value[:1]) + value[1:]
}

func (v *validator) profiles() {
	defaults := 0
	seen := map[string]bool{}
	funcs := map[string]string{}
	if len(v.t.Profiles) == 0 {
		v.errs = append(v.errs, fmt.Errorf("profiles: the table has none"))
	}
	for i, p := range v.t.Profiles {
		row := fmt.Sprintf("profile %q (row %d)", p.Name, i+1)
		for _, n := range append([]string{p.Name}, p.Aliases...) {
			if seen[n] {
				v.bad(row, "name or alias %q used twice", n)
			}
			seen[n] = true
			if !lowerName(n) {
				v.bad(row, "name or alias %q must be lower-case letters, digits and '-', starting with a letter", n)
			}
		}
		fn := ProfileFunc(p.Name)
		if prev, ok := funcs[fn]; ok {
			v.bad(row, "its function %s is also profile %q's", fn, prev)
		}
		funcs[fn] = p.Name
		if p.Doc == "" {
			v.bad(row, "doc is required")
		}
		if p.Default {
			defaults++
		}
	}
	if defaults != 1 {
		v.errs = append(v.errs, fmt.Errorf("profiles: exactly one profile must be Default, found %d", defaults))
	}
}

func (v *validator) variations() {
	profiles := map[string]bool{}
	for _, p := range v.t.Profiles {
		profiles[p.Name] = true
	}
	v.vars = map[string]Variation{}
	for i, x := range v.t.Variations {
		row := fmt.Sprintf("variation %q (row %d)", x.Name, i+1)
		v.ident(row, "name", x.Name)
		if _, ok := v.vars[x.Name]; ok {
			v.bad(row, "variation defined twice")
		}
		for _, y := range v.t.Variations[:i] {
			if y.Name != x.Name && strings.EqualFold(y.Name, x.Name) {
				v.bad(row, "name differs from variation %q only in case, and Set takes names in any case", y.Name)
			}
		}
		v.vars[x.Name] = x
		v.cite(row, x.Clauses)
		if x.Doc == "" {
			v.bad(row, "doc is required")
		}
		switch {
		case x.Layer == 0:
			v.bad(row, "layer is not set (LexerLayer, SessionLayer, RuntimeLayer or StoreLayer)")
		case x.Layer.String() == "":
			v.bad(row, "layer %d is not one of LexerLayer, SessionLayer, RuntimeLayer, StoreLayer", x.Layer)
		}
		if x.Kind < Bool || x.Kind > Enum {
			v.bad(row, "kind is not set")
			continue
		}
		if x.Kind == Enum {
			if len(x.Values) < 2 {
				v.bad(row, "an enum needs at least two values")
			}
			for j, val := range x.Values {
				if !lowerName(val) || strings.Contains(val, "-") {
					v.bad(row, "value %q must be lower-case letters and digits, starting with a letter", val)
				}
				if slices.Contains(x.Values[:j], val) {
					v.bad(row, "value %q listed twice", val)
				}
			}
		}
		if x.Kind != Enum && len(x.Values) > 0 {
			v.bad(row, "only an enum has values")
		}
		if (x.Kind == Octets || x.Kind == Count || x.Kind == Duration) && x.Min > x.Max {
			v.bad(row, "range %d–%d is empty", x.Min, x.Max)
		}
		if len(x.Profile) == 0 {
			v.bad(row, "no profile sets this variation")
		}
		for _, p := range v.t.Profiles {
			val, ok := x.Profile[p.Name]
			if !ok {
				v.bad(row, "profile %q does not set it", p.Name)
				continue
			}
			if err := CheckValue(x, val); err != nil {
				v.bad(row, "profile %q: %v", p.Name, err)
			}
		}
		var unknown []string
		for p := range x.Profile {
			if !profiles[p] {
				unknown = append(unknown, p)
			}
		}
		sort.Strings(unknown)
		for _, p := range unknown {
			v.bad(row, "sets unknown profile %q", p)
		}
	}
	// The runtime's variations: a row for each, of the kind its field
	// reads, with the layer the standard table gives it.
	for _, c := range runtimeVariations() {
		x, ok := v.vars[c.name]
		switch {
		case !ok:
			v.errs = append(v.errs, fmt.Errorf("variation %q: the runtime carries it (pop3.Variations), but the table does not define it", c.name))
		case !slices.Contains(c.kinds, x.Kind):
			v.errs = append(v.errs, fmt.Errorf("variation %q: the runtime reads it as kind %v, the table says %d", c.name, c.kinds, x.Kind))
		case c.values != nil && !slices.Equal(x.Values, c.values):
			v.errs = append(v.errs, fmt.Errorf("variation %q: values must be %v, in that order (the runtime's)", c.name, c.values))
		default:
			if std := POP3.Variation(c.name); std != nil && x.Layer != 0 && x.Layer != std.Layer {
				v.errs = append(v.errs, fmt.Errorf("variation %q: the %s honours it, the table says the %s", c.name, std.Layer, x.Layer))
			}
		}
	}
}

// layers checks that a variation's layer says who really honours it: one
// the core consults (by name, or through a command or capability row) is
// honoured by the lexer, the session or the runtime, and one it never
// consults can only be honoured by the store.
func (v *validator) layers() {
	consulted := map[string]bool{}
	for _, c := range runtimeVariations() {
		if std := POP3.Variation(c.name); std == nil || std.Layer != StoreLayer {
			consulted[c.name] = true
		}
	}
	for _, c := range v.t.Commands {
		for _, name := range []string{c.EnabledBy, c.AlwaysOKWhen, c.AfterAnyWhen, c.IgnoresArgsWhen} {
			consulted[name] = true
		}
	}
	for _, c := range v.t.Capabilities {
		consulted[c.When] = true
	}
	for i, x := range v.t.Variations {
		row := fmt.Sprintf("variation %q (row %d)", x.Name, i+1)
		switch {
		case x.Layer.String() == "":
			// Reported with the row.
		case consulted[x.Name] && x.Layer == StoreLayer:
			v.bad(row, "layer is StoreLayer, but the core consults it (a command, a capability or the core's own code)")
		case !consulted[x.Name] && x.Layer != StoreLayer:
			v.bad(row, "layer is %s, but nothing in the core consults it: only the store can honour it (StoreLayer)", x.Layer)
		}
	}
}

func (v *validator) commands() {
	cmds := map[string]Command{}
	v.caps = map[string]bool{}
	for _, c := range v.t.Capabilities {
		v.caps[c.Tag] = true
	}
	for i, c := range v.t.Commands {
		row := fmt.Sprintf("command %q (row %d)", c.Name, i+1)
		if len(c.Name) < 3 || len(c.Name) > 4 || strings.ToUpper(c.Name) != c.Name {
			v.bad(row, "keyword must be 3 or 4 upper-case characters (RFC 1939 §3)")
		}
		for j := 0; j < len(c.Name); j++ {
			if ch := c.Name[j]; !('A' <= ch && ch <= 'Z' || '0' <= ch && ch <= '9') {
				v.bad(row, "keyword character %q is not a letter or digit", ch)
			}
		}
		if len(c.Name) > 0 && !('A' <= c.Name[0] && c.Name[0] <= 'Z') {
			v.bad(row, "keyword must start with a letter: it names Go methods")
		}
		if _, ok := cmds[c.Name]; ok {
			v.bad(row, "command defined twice")
		}
		cmds[c.Name] = c
		if c.In == 0 {
			v.bad(row, "command allowed in no state")
		}
		if c.In&^v.allStates != 0 {
			v.bad(row, "allowed in a state the table does not define")
		}
		if c.Args > OptWord {
			v.bad(row, "unknown argument grammar %d", c.Args)
		}
		if c.Reply > Challenge {
			v.bad(row, "unknown reply shape %d", c.Reply)
		}
		if c.Then > StartTLS {
			v.bad(row, "unknown action %d", c.Then)
		}
		if c.Sets > UTF8Mode {
			v.bad(row, "unknown mode %d", c.Sets)
		}
		if c.Guard > Plaintext {
			v.bad(row, "unknown guard %d", c.Guard)
		}
		v.cite(row, c.Clauses)
		if c.Doc == "" {
			v.bad(row, "doc is required")
		}
		if c.Capability != "" && !v.caps[c.Capability] {
			v.bad(row, "advertised by capability %q, which the capability table lacks", c.Capability)
		}
		if c.EnabledBy != "" {
			v.boolVar(row, "enabled by", c.EnabledBy)
		}
		if c.AlwaysOKWhen != "" {
			v.boolVar(row, "always OK when", c.AlwaysOKWhen)
		}
		if c.AfterAnyWhen != "" {
			v.boolVar(row, fmt.Sprintf("after any %q when", c.After), c.AfterAnyWhen)
			if c.After == "" {
				v.bad(row, "AfterAnyWhen needs After")
			}
		}
		if c.IgnoresArgsWhen != "" {
			v.boolVar(row, "ignores arguments when", c.IgnoresArgsWhen)
			if c.Args != NoArgs {
				v.bad(row, "only a command of the NoArgs grammar can ignore its arguments")
			}
			if c.Then != Continue || len(c.Edges) > 0 {
				v.bad(row, "a command that closes, starts TLS or changes state must not ignore its arguments: its effect must be asked for clearly")
			}
		}
		// The runtime answers the commands it knows by keyword, and only
		// those: the table's Answer column must say what it does.
		want, core := pop3.CoreCommands()[c.Name]
		wantAnswer := ByCore
		if want.Maildrop {
			wantAnswer = ByMaildrop
		}
		switch c.Answer {
		case ByHandler:
			if core {
				v.bad(row, "the core answers %s itself (%v), by its keyword: a Handler method cannot", c.Name, wantAnswer)
			}
		case ByCore, ByMaildrop:
			if !core {
				v.bad(row, "the core answers only %s; a command of the table's own is answered by a Handler method (ByHandler)", coreAnswerNames())
			} else if Args(want.Args) != c.Args || wantAnswer != c.Answer {
				v.bad(row, "the core answers %s with argument grammar %v and answerer %v", c.Name, Args(want.Args), wantAnswer)
			}
			if c.Optional || c.EnabledBy != "" && c.Answer == ByMaildrop {
				v.bad(row, "a command the core answers has no Handler method to be optional")
			}
		default:
			v.bad(row, "unknown answerer %d", c.Answer)
		}
		for _, e := range c.Edges {
			for _, st := range v.t.States {
				if st.State == e.To && st.Final && (c.Answer != ByCore || st.Name != "UPDATE") {
					v.bad(row, "an edge into the final state is the core's: it runs UPDATE from the Maildrop (Answer ByCore, state UPDATE)")
				}
			}
		}
		for _, st := range v.t.States {
			if st.State&c.In != 0 && st.Initial && c.Answer == ByMaildrop {
				v.bad(row, "answered from the Maildrop, but allowed in %s, before any login opened one", st.Name)
			}
		}
		if c.Reply == Challenge && c.Args != Mechanism {
			v.bad(row, "a challenge reply needs the Mechanism grammar")
		}
		if c.Reply == MultiUnlessArg && c.Args != OptMsgNum && c.Args != OptWord {
			v.bad(row, "a reply that is multi-line unless an argument is given needs an optional argument")
		}
		for _, e := range c.Edges {
			if c.In&e.From == 0 {
				v.bad(row, "edge from a state the command is not allowed in")
			}
			if e.To&v.allStates == 0 || e.To&(e.To-1) != 0 {
				v.bad(row, "edge to an undefined state")
			}
		}
	}
	if len(v.t.Commands) > 63 {
		v.errs = append(v.errs, fmt.Errorf("commands: %d rows, but the session keeps a set of commands in 64 bits", len(v.t.Commands)))
	}
	for i, c := range v.t.Commands {
		if c.After != "" {
			if _, ok := cmds[c.After]; !ok {
				v.errs = append(v.errs, fmt.Errorf("command %q (row %d): must follow %q, which is not a command", c.Name, i+1, c.After))
			}
		}
	}
	// Reachability: follow the edges from the initial state.
	var reached State
	for _, s := range v.t.States {
		if s.Initial {
			reached |= s.State
		}
	}
	for changed := true; changed; {
		changed = false
		for _, c := range v.t.Commands {
			for _, e := range c.Edges {
				if reached&e.From != 0 && reached&e.To == 0 {
					reached |= e.To
					changed = true
				}
			}
		}
	}
	for i, s := range v.t.States {
		if reached&s.State == 0 {
			v.errs = append(v.errs, fmt.Errorf("state %q (row %d): nothing reaches it", s.Name, i+1))
		}
	}
}

func (v *validator) capabilities() {
	seen := map[string]bool{}
	for i, c := range v.t.Capabilities {
		row := fmt.Sprintf("capability %q (row %d)", c.Tag, i+1)
		if seen[c.Tag] {
			v.bad(row, "defined twice")
		}
		seen[c.Tag] = true
		if c.Tag == "" || strings.ToUpper(c.Tag) != c.Tag || strings.ContainsFunc(c.Tag, func(r rune) bool { return r <= ' ' || r > '~' }) {
			v.bad(row, "tag must be upper-case printable ASCII without spaces (RFC 2449 §5)")
		}
		v.cite(row, c.Clauses)
		switch c.When {
		case "always":
		case "server":
			if tags := pop3.ServerTags(); !slices.Contains(tags, c.Tag) {
				v.bad(row, "announced by the server, but the runtime has no CapaInfo field for it (only %s)", strings.Join(tags, ", "))
			}
		default:
			if x, ok := v.vars[c.When]; !ok || x.Kind != Bool {
				v.bad(row, "announced when %q, which is not \"always\", \"server\" or a boolean variation", c.When)
			}
		}
	}
}

func (v *validator) respCodes() {
	v.codes = map[string]bool{}
	v.codeNames = map[string]bool{}
	for i, r := range v.t.RespCodes {
		row := fmt.Sprintf("response code %q (row %d)", r.Code, i+1)
		if v.codes[r.Code] {
			v.bad(row, "defined twice")
		}
		v.codes[r.Code] = true
		if v.codeNames[r.Name] {
			v.bad(row, "name %q used twice", r.Name)
		}
		v.codeNames[r.Name] = true
		v.ident(row, "name", "Code"+r.Name)
		if r.Code == "" || strings.ContainsFunc(r.Code, func(r rune) bool { return r <= ' ' || r > '~' || r == '[' || r == ']' }) {
			v.bad(row, "code must be printable ASCII without spaces or brackets (RFC 2449 §8)")
		}
		v.cite(row, r.Clauses)
	}
	// The runtime's codes are the standard table's (pop3/table.go).
	for _, std := range POP3.RespCodes {
		i := slices.IndexFunc(v.t.RespCodes, func(r RespCode) bool { return r.Name == std.Name })
		if i < 0 || v.t.RespCodes[i].Code != std.Code {
			v.errs = append(v.errs, fmt.Errorf("response code %q: the runtime sends it as [%s], and the table must say so", std.Name, std.Code))
		}
	}
}

func (v *validator) errorRows() {
	v.errNames = map[string]bool{}
	for i, e := range v.t.Errors {
		row := fmt.Sprintf("error %q (row %d)", e.Name, i+1)
		if v.errNames[e.Name] {
			v.bad(row, "defined twice")
		}
		v.errNames[e.Name] = true
		v.ident(row, "name", "Err"+e.Name)
		if e.Code != "" && !v.codes[e.Code] {
			v.bad(row, "uses response code %q, which the table lacks", e.Code)
		}
		if e.Text == "" {
			v.bad(row, "informative text is required (MS-STANXPOP3 V0001)")
		}
		if len(e.Text)+len(e.Code)+9 > 512 {
			v.bad(row, "reply longer than 512 octets")
		}
		v.cite(row, e.Clauses)
	}
	// The runtime's errors are the standard table's (pop3/table.go).
	for _, std := range POP3.Errors {
		i := slices.IndexFunc(v.t.Errors, func(e Error) bool { return e.Name == std.Name })
		if i < 0 || v.t.Errors[i].Text != std.Text || v.t.Errors[i].Code != std.Code {
			v.errs = append(v.errs, fmt.Errorf("error %q: the runtime returns it as %q, and the error table must say so", "Err"+std.Name, std.Text))
		}
	}
}

func (v *validator) limits() {
	names := map[string]bool{}
	for i, l := range v.t.Limits {
		row := fmt.Sprintf("limit %q (row %d)", l.Name, i+1)
		if names[l.Name] {
			v.bad(row, "defined twice")
		}
		names[l.Name] = true
		v.ident(row, "name", l.Name)
		if l.Value < 0 || l.Value > 1<<31-1 {
			v.bad(row, "value %d is not an int32 count", l.Value)
		}
		if l.Doc == "" {
			v.bad(row, "doc is required")
		}
		v.cite(row, l.Clauses)
	}
	// The runtime's limits are the standard table's (pop3/table.go).
	for _, std := range POP3.Limits {
		i := slices.IndexFunc(v.t.Limits, func(l Limit) bool { return l.Name == std.Name })
		if i < 0 || v.t.Limits[i].Value != std.Value {
			v.errs = append(v.errs, fmt.Errorf("limit %q: the runtime holds to %d, and the table must say so", std.Name, std.Value))
		}
	}
}

// CheckValue checks one profile's value of x in its text form, as the
// generated Set would take it.
func CheckValue(x Variation, val string) error {
	switch x.Kind {
	case Bool:
		_, err := strconv.ParseBool(val)
		return err
	case Octets, Count:
		n, err := strconv.ParseInt(val, 10, 64)
		if err != nil {
			return err
		}
		if (n < x.Min || n > x.Max) && !(n == 0 && x.Zero) {
			return fmt.Errorf("%d is outside %d–%d", n, x.Min, x.Max)
		}
	case Duration:
		d, err := time.ParseDuration(val)
		if err != nil {
			return err
		}
		if int64(d) < x.Min || int64(d) > x.Max {
			return fmt.Errorf("%v is outside %v–%v", d, time.Duration(x.Min), time.Duration(x.Max))
		}
	case Enum:
		if slices.Contains(x.Values, val) {
			return nil
		}
		return fmt.Errorf("%q is not one of %v", val, x.Values)
	default:
		return fmt.Errorf("kind is not set")
	}
	return nil
}

// coreAnswerNames lists CoreAnswers' commands in a stable order.
func coreAnswerNames() string {
	core := pop3.CoreCommands()
	names := make([]string, 0, len(core))
	for n := range core {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}
