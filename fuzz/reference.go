package pop3fuzz

import (
	"bytes"
	"strings"

	"github.com/pop3kit/pop3kit/internal/pop3test"
	"github.com/pop3kit/pop3kit/pop3"
	"github.com/pop3kit/pop3kit/pop3gen"
	"github.com/pop3kit/pop3kit/spec"
)

// Reference parses a command line the slow way, straight from the spec
// table and the variations, with none of the generated lexer's shortcuts.
// It returns the command it reads and every error the line deserves: the
// line is valid exactly when errs is empty, and the generated parser must
// then agree on every value; when errs is not empty, the generated parser
// must return one of them.
func Reference(line []byte, v *pop3gen.Variations, m pop3.Mode) (c pop3.Command, errs []*pop3.Error) {
	switch {
	case bytes.HasSuffix(line, []byte("\r\n")):
		line = line[:len(line)-2]
	case bytes.HasSuffix(line, []byte("\n")):
		line = line[:len(line)-1]
	}
	// A command that takes a SASL mechanism (AUTH) may carry an initial
	// response up to MaxAuthLineOctets; the keyword is looked for past
	// any SPACE or TAB, whatever LenientSeparators says of them.
	limit := v.MaxCommandOctets
	if lead := bytes.TrimLeft(line, " \t"); v.MaxAuthLineOctets > limit {
		kw := lead
		if i := bytes.IndexAny(lead, " \t"); i >= 0 {
			kw = lead[:i]
		}
		if row, ok := lookupRow(kw); ok && row.Args == spec.Mechanism {
			limit = v.MaxAuthLineOctets
		}
	}
	if len(line)+2 > limit {
		return c, []*pop3.Error{pop3test.Err("LineTooLong")}
	}
	isSep := func(b byte) bool { return b == ' ' || b == '\t' }
	if v.LenientSeparators {
		for len(line) > 0 && isSep(line[0]) {
			line = line[1:]
		}
	}
	if len(line) == 0 {
		return c, []*pop3.Error{pop3test.Err("EmptyLine")}
	}
	end := bytes.IndexAny(line, " \t")
	if end < 0 {
		end = len(line)
	}
	kw, rest := line[:end], line[end:]
	row, ok := lookupRow(kw)
	if !ok {
		for _, b := range line {
			if b < 0x20 && b != '\t' || b == 0x7f {
				if b == '\r' {
					return c, []*pop3.Error{pop3test.Err("BareCR")}
				}
				return c, []*pop3.Error{pop3test.Err("BadByte")}
			}
		}
		return c, []*pop3.Error{pop3test.Err("UnknownCommand")}
	}
	c.Cmd = (&pop3gen.Variations{}).Protocol().Command(row.Name)
	add := func(e *pop3.Error) { errs = append(errs, e) }
	eight := (v.UTF8 || m&pop3.ModeUTF8 != 0) && (row.Args == spec.Word || row.Args == spec.Secret || row.Args == spec.NameDigest)
	maxArg := v.MaxArgOctets
	if row.LongArgs {
		maxArg = 0
	}
	badOctet := func(b byte, allowTab bool) bool {
		return b < 0x20 && !(allowTab && b == '\t') || b == 0x7f || b >= 0x80 && !eight
	}
	octetErr := func(b byte) *pop3.Error {
		if b == '\r' {
			return pop3test.Err("BareCR")
		}
		return pop3test.Err("BadByte")
	}

	// PASS under PassKeepsSpaces: the rest of the line after the separator.
	if row.Args == spec.Secret && v.PassKeepsSpaces {
		if len(rest) == 0 {
			return c, []*pop3.Error{pop3test.Err("MissingArg")}
		}
		if rest[0] == '\t' && !v.LenientSeparators {
			add(pop3test.Err("BadSeparator"))
		}
		r := rest[1:]
		if v.LenientSeparators {
			r = bytes.TrimLeft(r, " \t")
		}
		if len(r) == 0 {
			add(pop3test.Err("MissingArg"))
		}
		if maxArg > 0 && len(r) > maxArg {
			add(pop3test.Err("ArgTooLong"))
		}
		for _, b := range r {
			if badOctet(b, true) {
				add(octetErr(b))
			}
		}
		c.Arg1 = r
		return c, errs
	}

	// AUTH alone lists the mechanisms where AuthListing is on.
	if row.Args == spec.Mechanism && v.AuthListing && len(bytes.Trim(rest, " \t")) == 0 {
		return c, nil
	}

	// Separators: under SpaceRuns a run of SPACEs separates and SPACEs may
	// end the line, but a TAB never separates; strictly, exactly one SPACE
	// precedes each argument.
	switch {
	case v.LenientSeparators:
	case v.SpaceRuns:
		if bytes.IndexByte(rest, '\t') >= 0 {
			add(pop3test.Err("BadSeparator"))
		}
	default:
		for i := 0; i < len(rest); i++ {
			if rest[i] == '\t' || rest[i] == ' ' && (i == len(rest)-1 || rest[i+1] == ' ' || rest[i+1] == '\t') {
				add(pop3test.Err("BadSeparator"))
				break
			}
		}
	}
	tokens := splitOctets(rest)
	for _, t := range tokens {
		for _, b := range t {
			if badOctet(b, false) {
				add(octetErr(b))
			}
		}
		if maxArg > 0 && len(t) > maxArg {
			add(pop3test.Err("ArgTooLong"))
		}
	}
	min, max := arity(row.Args)
	// A row with IgnoresArgsWhen drops its arguments when that variation
	// is on (after the checks above).
	ignore := false
	if row.IgnoresArgsWhen != "" {
		val, _ := v.Get(row.IgnoresArgsWhen)
		ignore = val == "true"
	}
	switch {
	case len(tokens) > max && !ignore:
		add(pop3test.Err("ExtraArgs"))
	case len(tokens) < min:
		add(pop3test.Err("MissingArg"))
	}
	tok := func(i int) []byte {
		if i < len(tokens) {
			return tokens[i]
		}
		return nil
	}
	switch row.Args {
	case spec.MsgNum, spec.OptMsgNum:
		if t := tok(0); t != nil {
			c.Msg = number(t, pop3test.Err("BadMsgNum"), true, add)
		}
	case spec.MsgNumCount:
		if t := tok(0); t != nil {
			c.Msg = number(t, pop3test.Err("BadMsgNum"), true, add)
		}
		if t := tok(1); t != nil {
			c.Count = count(t, add)
		}
	case spec.Word, spec.Secret, spec.OptWord:
		c.Arg1 = tok(0)
	case spec.NameDigest:
		c.Arg1, c.Arg2 = tok(0), tok(1)
		if d := tok(1); d != nil && !hexDigest(d) {
			add(pop3test.Err("BadDigest"))
		}
	case spec.Mechanism:
		c.Arg1, c.Arg2 = tok(0), tok(1)
		if mech := tok(0); mech != nil && !mechanism(mech) {
			add(pop3test.Err("BadMechanism"))
		}
		if ir := tok(1); ir != nil && string(ir) != "=" && !base64Text(ir) {
			add(pop3test.Err("BadBase64"))
		}
	}
	return c, errs
}

// lookupRow finds the table row whose keyword is kw in ASCII case: only
// letters fold, so "UTF8" never matches "UTF\x18".
func lookupRow(kw []byte) (spec.Command, bool) {
	for _, row := range spec.POP3.Commands {
		if len(row.Name) != len(kw) {
			continue
		}
		match := true
		for i := range kw {
			a, b := kw[i], row.Name[i]
			if 'a' <= a && a <= 'z' {
				a -= 'a' - 'A'
			}
			if a != b {
				match = false
			}
		}
		if match {
			return row, true
		}
	}
	return spec.Command{}, false
}

// splitOctets splits on runs of SPACE and TAB, octet by octet (no UTF-8
// decoding: an argument may hold any octets).
func splitOctets(b []byte) [][]byte {
	var out [][]byte
	start := -1
	for i, c := range b {
		if c == ' ' || c == '\t' {
			if start >= 0 {
				out = append(out, b[start:i])
				start = -1
			}
		} else if start < 0 {
			start = i
		}
	}
	if start >= 0 {
		out = append(out, b[start:])
	}
	return out
}

func arity(a spec.Args) (min, max int) {
	switch a {
	case spec.NoArgs:
		return 0, 0
	case spec.MsgNum, spec.Word, spec.Secret:
		return 1, 1
	case spec.OptMsgNum, spec.OptWord:
		return 0, 1
	case spec.MsgNumCount, spec.NameDigest:
		return 2, 2
	case spec.Mechanism:
		return 1, 2
	}
	panic("unknown grammar")
}

// number reads 1*DIGIT up to 2^31-1.
func number(t []byte, bad *pop3.Error, positive bool, add func(*pop3.Error)) uint32 {
	var v uint64
	for _, b := range t {
		if b < '0' || b > '9' {
			add(bad)
			return 0
		}
		if v < 1<<40 {
			v = v*10 + uint64(b-'0')
		}
	}
	switch {
	case v > 1<<31-1:
		add(pop3test.Err("NumberTooLarge"))
		return 0
	case v == 0 && positive:
		add(bad)
	}
	return uint32(v)
}

// count reads TOP's line count: 1*DIGIT of any length, saturating at
// 2^32-1 (RFC 1939 §7: a count beyond the body sends the whole message).
func count(t []byte, add func(*pop3.Error)) uint32 {
	var v uint64
	for _, b := range t {
		if b < '0' || b > '9' {
			add(pop3test.Err("BadCount"))
			return 0
		}
		v = min(v*10+uint64(b-'0'), 1<<32)
	}
	return uint32(min(v, 1<<32-1))
}

func hexDigest(d []byte) bool {
	if len(d) != 32 {
		return false
	}
	for _, b := range d {
		if !strings.ContainsRune("0123456789abcdefABCDEF", rune(b)) {
			return false
		}
	}
	return true
}

func mechanism(m []byte) bool {
	if len(m) == 0 || len(m) > 20 {
		return false
	}
	for _, b := range m {
		if !strings.ContainsRune("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", rune(b)) {
			return false
		}
	}
	return true
}

// base64Text is RFC 4648 base64 as RFC 5034 wants it checked: the
// alphabet, and at most two "=" only at the end of a padded string.
func base64Text(t []byte) bool {
	s := string(t)
	body := strings.TrimRight(s, "=")
	pad := len(s) - len(body)
	if body == "" || pad > 2 || len(s)%4 != 0 {
		return false
	}
	for _, r := range body {
		if !strings.ContainsRune("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", r) {
			return false
		}
	}
	return true
}
