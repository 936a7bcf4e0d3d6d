package pop3fuzz

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/pop3kit/pop3kit/internal/fuzzbound"
	"github.com/pop3kit/pop3kit/pop3"
	"github.com/pop3kit/pop3kit/pop3gen"
)

// variations picks the variations a fuzz input runs under: one of the
// three profiles, with the separators, PASS and AUTH variations flipped
// by the higher bits, so every combination is reachable.
func variations(sel uint8) pop3gen.Variations {
	v, _ := pop3gen.Profile(pop3gen.ProfileNames[int(sel)%len(pop3gen.ProfileNames)])
	if sel&0x10 != 0 {
		v.LenientSeparators = !v.LenientSeparators
	}
	if sel&0x20 != 0 {
		v.PassKeepsSpaces = !v.PassKeepsSpaces
	}
	if sel&0x40 != 0 {
		v.AuthListing = !v.AuthListing
	}
	if sel&0x80 != 0 {
		v.MaxArgOctets = 40 - v.MaxArgOctets // 40 ↔ 0
	}
	// Bits 2 and 3 vary independently of the profile (sel%3).
	if sel&0x04 != 0 {
		v.SpaceRuns = !v.SpaceRuns
	}
	if sel&0x08 != 0 {
		v.IgnoreExtraArgs = !v.IgnoreExtraArgs
	}
	return v
}

// FuzzParse drives the generated lexer under every profile and checks it
// against Reference, the slow reading of the spec table: the same verdict,
// the same values, an error the reference also finds. It also checks that
// parsing allocates nothing.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"USER alice\r\n", "RETR 1\r\n", "TOP 1 10\r\n", "AUTH PLAIN =\r\n", "PASS a b\r\n", "APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n"} {
		f.Add([]byte(s), uint8(0), uint8(0))
	}
	// Lines past MaxCommandOctets: an AUTH with an OAuth-sized initial
	// response (MaxAuthLineOctets), and other commands that must not
	// pass for one.
	long := strings.Repeat("QUFB", 500)
	for _, s := range []string{"AUTH XOAUTH2 " + long + "\r\n", " auth\tPLAIN " + long + "\r\n", "AUTHX " + long + "\r\n", "USER " + long + "\r\n", "AUTH\r" + long + "\r\n"} {
		for sel := range uint8(3) {
			f.Add([]byte(s), sel, uint8(0))
		}
	}
	fuzzbound.Fuzz(f, func(t *testing.T, line []byte, sel, mode uint8) {
		v := variations(sel)
		m := pop3.Mode(mode) & pop3.ModeUTF8
		var got pop3.Command
		err := got.Parse(line, &v, m)
		want, errs := Reference(line, &v, m)
		switch {
		case err == nil && len(errs) > 0:
			t.Fatalf("%q (%s): generated parser accepts %v, reference refuses: %v", line, pop3gen.ProfileNames[int(sel)%3], got.Cmd, texts(errs))
		case err != nil && len(errs) == 0:
			t.Fatalf("%q (%s): generated parser refuses (%v), reference accepts %v", line, pop3gen.ProfileNames[int(sel)%3], err, want.Cmd)
		case err != nil && !slices.ContainsFunc(errs, func(e *pop3.Error) bool { return *e == *err }):
			t.Fatalf("%q: generated parser says %q, reference wants one of %v", line, err.Text, texts(errs))
		case err == nil:
			if got.Cmd != want.Cmd || got.Msg != want.Msg || got.Count != want.Count ||
				!bytes.Equal(got.Arg1, want.Arg1) || !bytes.Equal(got.Arg2, want.Arg2) || (got.Arg1 == nil) != (want.Arg1 == nil) {
				t.Fatalf("%q: generated %+v, reference %+v", line, got, want)
			}
		}
		// Allocation is checked on a share of the inputs: AllocsPerRun
		// stops the world and would slow the fuzzer tenfold.
		if len(line)%8 == 0 {
			if n := testing.AllocsPerRun(1, func() { _ = got.Parse(line, &v, m) }); n != 0 {
				t.Fatalf("%q: Parse allocated %v times", line, n)
			}
		}
	})
}

func texts(errs []*pop3.Error) []string {
	var s []string
	for _, e := range errs {
		s = append(s, e.Text)
	}
	return s
}
