package main

import (
	"fmt"
	"go/token"
	"strconv"
	"strings"
	"time"

	"github.com/pop3kit/pop3kit/spec"
)

// coreVariations are the variations the generated core consults by name;
// the table must declare each with the kind given here.
var coreVariations = map[string]spec.Kind{
	"LenientSeparators": spec.Bool,
	"SpaceRuns":         spec.Bool,
	"MaxArgOctets":      spec.Octets,
	"MaxCommandOctets":  spec.Octets,
	"UserAlwaysOK":      spec.Bool,
	"PlaintextAuth":     spec.Enum,
	"PassKeepsSpaces":   spec.Bool,
	"AuthListing":       spec.Bool,
	"UnauthTimeout":     spec.Duration,
	"AuthTimeout":       spec.Duration,
	"TimeoutNotice":     spec.Bool,
	"InformativeErrors": spec.Bool,
	"UTF8":              spec.Bool,
	"MaxSASLOctets":     spec.Octets,
	"MaxBadCommands":    spec.Count,
}

// plaintextValues are the values of PlaintextAuth the core understands.
var plaintextValues = []string{"always", "secure", "never"}

// serverCapabilities maps the CAPA tags announced "when the server says
// so" to the CapaInfo field that says so.
var serverCapabilities = map[string]string{
	"USER":           "Plaintext",
	"SASL":           "SASL",
	"LOGIN-DELAY":    "LoginDelay",
	"EXPIRE":         "Expire",
	"IMPLEMENTATION": "Implementation",
	"STLS":           "STLS",
}

// Validate checks the table and returns every problem it finds, each
// naming the row.
func Validate(t *spec.Table) []error {
	var errs []error
	bad := func(row, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", row, fmt.Sprintf(format, args...)))
	}

	// Clauses: unique ids, and every cited id defined.
	clauses := map[string]spec.Clause{}
	for i, c := range t.Clauses {
		row := fmt.Sprintf("clause %q (row %d)", c.ID, i+1)
		if c.ID == "" || strings.ContainsAny(c.ID, " \t") {
			bad(row, "id must be a non-empty word")
		}
		if prev, ok := clauses[c.ID]; ok {
			if prev.Summary != c.Summary || prev.Behaviour != c.Behaviour {
				bad(row, "clause id used twice for different behaviour (%q vs %q)", prev.Behaviour, c.Behaviour)
			} else {
				bad(row, "clause defined twice")
			}
		}
		clauses[c.ID] = c
		if c.Source == "" || c.Summary == "" || c.Behaviour == "" {
			bad(row, "source, summary and behaviour are required")
		}
		if c.Layer < spec.Core || c.Layer > spec.NotApplicable {
			bad(row, "layer is not set")
		}
		if c.Layer == spec.NotApplicable && c.Pending != "" {
			bad(row, "a clause that does not apply cannot be pending")
		}
	}
	cite := func(row string, ids []string) {
		if len(ids) == 0 {
			bad(row, "cites no clause")
		}
		for _, id := range ids {
			if _, ok := clauses[id]; !ok {
				bad(row, "cites clause %q, which the clause table does not define", id)
			}
		}
	}

	// States.
	var allStates spec.State
	initial := 0
	stateNames := map[string]bool{}
	for i, s := range t.States {
		row := fmt.Sprintf("state %q (row %d)", s.Name, i+1)
		if s.State == 0 || s.State&(s.State-1) != 0 {
			bad(row, "state must be exactly one bit")
		}
		if allStates&s.State != 0 {
			bad(row, "state bit used twice")
		}
		allStates |= s.State
		if stateNames[s.Name] {
			bad(row, "state name used twice")
		}
		stateNames[s.Name] = true
		if s.Initial {
			initial++
		}
		cite(row, []string{s.Clause})
	}
	if initial != 1 {
		errs = append(errs, fmt.Errorf("states: exactly one state must be Initial, found %d", initial))
	}

	// Variations.
	profiles := map[string]bool{}
	for _, p := range t.Profiles {
		profiles[p.Name] = true
	}
	vars := map[string]spec.Variation{}
	for i, v := range t.Variations {
		row := fmt.Sprintf("variation %q (row %d)", v.Name, i+1)
		if !token.IsIdentifier(v.Name) || !token.IsExported(v.Name) {
			bad(row, "name must be an exported Go identifier")
		}
		if _, ok := vars[v.Name]; ok {
			bad(row, "variation defined twice")
		}
		vars[v.Name] = v
		cite(row, v.Clauses)
		if v.Doc == "" {
			bad(row, "doc is required")
		}
		if v.Kind == spec.Enum && len(v.Values) < 2 {
			bad(row, "an enum needs at least two values")
		}
		if v.Kind != spec.Enum && len(v.Values) > 0 {
			bad(row, "only an enum has values")
		}
		if (v.Kind == spec.Octets || v.Kind == spec.Count || v.Kind == spec.Duration) && v.Min > v.Max {
			bad(row, "range %d–%d is empty", v.Min, v.Max)
		}
		if len(v.Profile) == 0 {
			bad(row, "no profile sets this variation")
		}
		for _, p := range t.Profiles {
			val, ok := v.Profile[p.Name]
			if !ok {
				bad(row, "profile %q does not set it", p.Name)
				continue
			}
			if err := checkValue(v, val); err != nil {
				bad(row, "profile %q: %v", p.Name, err)
			}
		}
		for p := range v.Profile {
			if !profiles[p] {
				bad(row, "sets unknown profile %q", p)
			}
		}
	}
	for name, kind := range coreVariations {
		v, ok := vars[name]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("variation %q: the core consults it, but the table does not define it", name))
		case v.Kind != kind:
			errs = append(errs, fmt.Errorf("variation %q: the core reads it as kind %d, the table says %d", name, kind, v.Kind))
		}
	}
	if v, ok := vars["PlaintextAuth"]; ok && strings.Join(v.Values, ",") != strings.Join(plaintextValues, ",") {
		errs = append(errs, fmt.Errorf("variation %q: values must be %v, in that order", "PlaintextAuth", plaintextValues))
	}

	// Profiles.
	defaults := 0
	seen := map[string]bool{}
	for i, p := range t.Profiles {
		row := fmt.Sprintf("profile %q (row %d)", p.Name, i+1)
		for _, n := range append([]string{p.Name}, p.Aliases...) {
			if seen[n] {
				bad(row, "name or alias %q used twice", n)
			}
			seen[n] = true
		}
		if p.Default {
			defaults++
		}
	}
	if defaults != 1 {
		errs = append(errs, fmt.Errorf("profiles: exactly one profile must be Default, found %d", defaults))
	}

	// Commands.
	cmds := map[string]spec.Command{}
	reached := map[spec.State]bool{}
	for _, s := range t.States {
		if s.Initial {
			reached[s.State] = true
		}
	}
	caps := map[string]bool{}
	for _, c := range t.Capabilities {
		caps[c.Tag] = true
	}
	for i, c := range t.Commands {
		row := fmt.Sprintf("command %q (row %d)", c.Name, i+1)
		if len(c.Name) < 3 || len(c.Name) > 4 || strings.ToUpper(c.Name) != c.Name {
			bad(row, "keyword must be 3 or 4 upper-case characters (RFC 1939 §3)")
		}
		for j := 0; j < len(c.Name); j++ {
			if ch := c.Name[j]; !('A' <= ch && ch <= 'Z' || '0' <= ch && ch <= '9') {
				bad(row, "keyword character %q is not a letter or digit", ch)
			}
		}
		if _, ok := cmds[c.Name]; ok {
			bad(row, "command defined twice")
		}
		cmds[c.Name] = c
		if c.In == 0 {
			bad(row, "command allowed in no state")
		}
		if c.In&^allStates != 0 {
			bad(row, "allowed in a state the table does not define")
		}
		if c.Args > spec.OptWord {
			bad(row, "unknown argument grammar %d", c.Args)
		}
		cite(row, c.Clauses)
		if c.Doc == "" {
			bad(row, "doc is required")
		}
		if c.Capability != "" && !caps[c.Capability] {
			bad(row, "advertised by capability %q, which the capability table lacks", c.Capability)
		}
		if c.EnabledBy != "" {
			if v, ok := vars[c.EnabledBy]; !ok || v.Kind != spec.Bool {
				bad(row, "enabled by %q, which is not a boolean variation", c.EnabledBy)
			}
		}
		if c.AlwaysOKWhen != "" {
			if v, ok := vars[c.AlwaysOKWhen]; !ok || v.Kind != spec.Bool {
				bad(row, "always OK when %q, which is not a boolean variation", c.AlwaysOKWhen)
			}
		}
		if c.AfterAnyWhen != "" {
			if v, ok := vars[c.AfterAnyWhen]; !ok || v.Kind != spec.Bool {
				bad(row, "after any %q when %q, which is not a boolean variation", c.After, c.AfterAnyWhen)
			}
			if c.After == "" {
				bad(row, "AfterAnyWhen needs After")
			}
		}
		if c.IgnoresArgsWhen != "" {
			if v, ok := vars[c.IgnoresArgsWhen]; !ok || v.Kind != spec.Bool {
				bad(row, "ignores arguments when %q, which is not a boolean variation", c.IgnoresArgsWhen)
			}
			if c.Args != spec.NoArgs {
				bad(row, "only a command of the NoArgs grammar can ignore its arguments")
			}
			if c.Then != spec.Continue || len(c.Edges) > 0 {
				bad(row, "a command that closes, starts TLS or changes state must not ignore its arguments: its effect must be asked for clearly")
			}
		}
		if c.Reply == spec.Challenge && c.Args != spec.Mechanism {
			bad(row, "a challenge reply needs the Mechanism grammar")
		}
		for _, e := range c.Edges {
			if c.In&e.From == 0 {
				bad(row, "edge from a state the command is not allowed in")
			}
			if e.To&allStates == 0 || e.To&(e.To-1) != 0 {
				bad(row, "edge to an undefined state")
			}
		}
	}
	if len(t.Commands) > 63 {
		errs = append(errs, fmt.Errorf("commands: %d rows, but the session keeps a set of commands in 64 bits", len(t.Commands)))
	}
	for i, c := range t.Commands {
		if c.After != "" {
			if _, ok := cmds[c.After]; !ok {
				errs = append(errs, fmt.Errorf("command %q (row %d): must follow %q, which is not a command", c.Name, i+1, c.After))
			}
		}
	}
	// Reachability: follow the edges from the initial state.
	for changed := true; changed; {
		changed = false
		for _, c := range t.Commands {
			for _, e := range c.Edges {
				if reached[e.From] && !reached[e.To] {
					reached[e.To] = true
					changed = true
				}
			}
		}
	}
	for i, s := range t.States {
		if !reached[s.State] {
			errs = append(errs, fmt.Errorf("state %q (row %d): nothing reaches it", s.Name, i+1))
		}
	}

	// Capabilities.
	for i, c := range t.Capabilities {
		row := fmt.Sprintf("capability %q (row %d)", c.Tag, i+1)
		cite(row, c.Clauses)
		switch c.When {
		case "always":
		case "server":
			if _, ok := serverCapabilities[c.Tag]; !ok {
				bad(row, "announced by the server, but the generator knows no CapaInfo field for it")
			}
		default:
			if v, ok := vars[c.When]; !ok || v.Kind != spec.Bool {
				bad(row, "announced when %q, which is not \"always\", \"server\" or a boolean variation", c.When)
			}
		}
	}

	// Response codes and errors.
	codes := map[string]bool{}
	for i, r := range t.RespCodes {
		row := fmt.Sprintf("response code %q (row %d)", r.Code, i+1)
		if codes[r.Code] {
			bad(row, "defined twice")
		}
		codes[r.Code] = true
		cite(row, r.Clauses)
	}
	errNames := map[string]bool{}
	for i, e := range t.Errors {
		row := fmt.Sprintf("error %q (row %d)", e.Name, i+1)
		if errNames[e.Name] {
			bad(row, "defined twice")
		}
		errNames[e.Name] = true
		if e.Code != "" && !codes[e.Code] {
			bad(row, "uses response code %q, which the table lacks", e.Code)
		}
		if e.Text == "" {
			bad(row, "informative text is required (MS-STANXPOP3 V0001)")
		}
		if len(e.Text)+len(e.Code)+9 > 512 {
			bad(row, "reply longer than 512 octets")
		}
		cite(row, e.Clauses)
	}
	for _, name := range stubErrors() {
		if !errNames[strings.TrimPrefix(name, "Err")] {
			errs = append(errs, fmt.Errorf("error %q: the lexer returns it, but the error table lacks it", name))
		}
	}
	for _, name := range []string{"NotSupported", "NeedAuth", "AlreadyAuth", "NeedUser", "TLSActive", "PlaintextRefused", "PlaintextDisabled", "TooManyErrors", "Autologout", "Internal", "AuthCancelled"} {
		if !errNames[name] {
			errs = append(errs, fmt.Errorf("error %q: the session sends it, but the error table lacks it", name))
		}
	}
	limits := map[string]bool{}
	for _, l := range t.Limits {
		limits[l.Name] = true
		cite(fmt.Sprintf("limit %q", l.Name), l.Clauses)
	}
	if !limits["MaxReplyOctets"] {
		errs = append(errs, fmt.Errorf("limit %q: the reply writer needs it", "MaxReplyOctets"))
	}
	return errs
}

// checkValue checks a profile's value of v as --set would.
func checkValue(v spec.Variation, val string) error {
	switch v.Kind {
	case spec.Bool:
		_, err := strconv.ParseBool(val)
		return err
	case spec.Octets, spec.Count:
		n, err := strconv.ParseInt(val, 10, 64)
		if err != nil {
			return err
		}
		if (n < v.Min || n > v.Max) && !(n == 0 && v.Zero) {
			return fmt.Errorf("%d is outside %d–%d", n, v.Min, v.Max)
		}
	case spec.Duration:
		d, err := time.ParseDuration(val)
		if err != nil {
			return err
		}
		if int64(d) < v.Min || int64(d) > v.Max {
			return fmt.Errorf("%v is outside %v–%v", d, time.Duration(v.Min), time.Duration(v.Max))
		}
	case spec.Enum:
		for _, x := range v.Values {
			if x == val {
				return nil
			}
		}
		return fmt.Errorf("%q is not one of %v", val, v.Values)
	default:
		return fmt.Errorf("kind is not set")
	}
	return nil
}
