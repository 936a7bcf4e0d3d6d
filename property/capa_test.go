package property

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/leanovate/gopter"
	"github.com/leanovate/gopter/gen"
	"github.com/leanovate/gopter/prop"

	"github.com/pop3kit/pop3kit/internal/clause"
	"github.com/pop3kit/pop3kit/pop3"
	"github.com/pop3kit/pop3kit/pop3/memdrop"
	"github.com/pop3kit/pop3kit/pop3gen"
)

func (capaHandler) User(*pop3.Writer, []byte) error { return nil }
func (capaHandler) Pass(_, _ []byte) (pop3.Maildrop, error) {
	return memdrop.New(), nil
}

// capaHandler is the required Handler; the optional ones below embed it,
// one per set of optional interfaces a handler may implement.
type capaHandler struct{}

type capaAPOP struct{}

func (capaAPOP) APOP(_, _ []byte) (pop3.Maildrop, error) { return memdrop.New(), nil }

type capaAuth struct{}

func (capaAuth) Mechanisms() []string { return []string{"PLAIN", "X-TOKEN"} }
func (capaAuth) Auth(string) (pop3.SASLServer, error) {
	return capaSASL{}, nil
}
func (capaAuth) Authenticated() (pop3.Maildrop, error) { return memdrop.New(), nil }

type capaSASL struct{}

func (capaSASL) Next([]byte) ([]byte, bool, error) { return []byte("go on"), false, nil }

type capaUTF8 struct{}

func (capaUTF8) UTF8(*pop3.Writer) error { return nil }

type capaLang struct{}

func (capaLang) Lang(*pop3.Writer, []byte) error { return nil }

// handlerWith returns a Handler implementing the optional interfaces that
// set's bits name: 1 APOP, 2 AUTH, 4 UTF8, 8 LANG.
func handlerWith(set int) pop3gen.Handler {
	type (
		a    = capaAPOP
		au   = capaAuth
		u    = capaUTF8
		l    = capaLang
		base = capaHandler
	)
	switch set & 15 {
	case 0:
		return struct{ base }{}
	case 1:
		return struct {
			base
			a
		}{}
	case 2:
		return struct {
			base
			au
		}{}
	case 3:
		return struct {
			base
			a
			au
		}{}
	case 4:
		return struct {
			base
			u
		}{}
	case 5:
		return struct {
			base
			a
			u
		}{}
	case 6:
		return struct {
			base
			au
			u
		}{}
	case 7:
		return struct {
			base
			a
			au
			u
		}{}
	case 8:
		return struct {
			base
			l
		}{}
	case 9:
		return struct {
			base
			a
			l
		}{}
	case 10:
		return struct {
			base
			au
			l
		}{}
	case 11:
		return struct {
			base
			a
			au
			l
		}{}
	case 12:
		return struct {
			base
			u
			l
		}{}
	case 13:
		return struct {
			base
			a
			u
			l
		}{}
	case 14:
		return struct {
			base
			au
			u
			l
		}{}
	}
	return struct {
		base
		a
		au
		u
		l
	}{}
}

// capaCase is one point of the property: a profile, variations switched,
// the handler's optional interfaces, the connection and the state.
type capaCase struct {
	Profile                      int
	APOP, UTF8, LANG, Listing    bool
	Plaintext                    int // always, secure, never
	Handler                      int // handlerWith's bits
	Secure, OfferTLS, RequireTLS bool
	LoggedIn                     bool
}

// TestCapaIsWhatIsAccepted: for random variations, sets of optional
// handler interfaces, connections and states, CAPA lists a capability
// exactly when the command it announces is accepted in that state, both
// ways: USER and PASS are offered and taken only where plaintext is
// allowed, SASL lists exactly the mechanisms AUTH runs, STLS only where TLS
// can start, UTF8 and LANG only where on and served, TOP and UIDL after
// login (RFC 2449 §5: CAPA lists what applies now; MS-STANXPOP3 V0010).
func TestCapaIsWhatIsAccepted(t *testing.T) {
	clause.Covers(t, "RFC2449-5-CAPA", "V0010")
	props := gopter.NewProperties(parameters(t))
	caseGen := gopter.CombineGens(gen.IntRange(0, 2), gen.Bool(), gen.Bool(), gen.Bool(), gen.Bool(), gen.IntRange(0, 2),
		gen.IntRange(0, 15), gen.Bool(), gen.Bool(), gen.Bool(), gen.Bool()).Map(func(v []any) capaCase {
		return capaCase{v[0].(int), v[1].(bool), v[2].(bool), v[3].(bool), v[4].(bool), v[5].(int), v[6].(int), v[7].(bool), v[8].(bool), v[9].(bool), v[10].(bool)}
	})
	props.Property("CAPA's lines and the commands answered agree", prop.ForAll(func(k capaCase) string {
		v, err := pop3gen.Profile(pop3gen.ProfileNames[k.Profile])
		if err != nil {
			return err.Error()
		}
		v.APOP, v.UTF8, v.LANG, v.AuthListing = k.APOP, k.UTF8, k.LANG, k.Listing
		v.PlaintextAuth = []pop3.PlaintextAuth{pop3.PlaintextAuthAlways, pop3.PlaintextAuthSecure, pop3.PlaintextAuthNever}[k.Plaintext]
		fresh := func() (*pop3.Session, *bytes.Buffer) {
			var out bytes.Buffer
			s := pop3.NewSession(handlerWith(k.Handler), pop3.NewWriter(&out), &v)
			s.SetTLS(k.OfferTLS, k.RequireTLS)
			if k.Secure {
				s.SetMode(pop3.ModeSecure)
			}
			if k.LoggedIn {
				s.Feed([]byte("APOP nobody 0123456789abcdef0123456789abcdef\r\n"))
				if !s.LoggedIn() {
					s.Feed([]byte("AUTH X-TOKEN =\r\n"))
					s.Feed([]byte("*\r\n"))
					s.Feed([]byte("USER u\r\n"))
					s.Feed([]byte("PASS p\r\n"))
				}
				if !s.LoggedIn() {
					return nil, nil // no login this case allows
				}
			}
			return s, &out
		}
		reply := func(lines ...string) string {
			s, out := fresh()
			if s == nil {
				return ""
			}
			for _, l := range lines {
				out.Reset()
				s.Feed([]byte(l + "\r\n"))
			}
			return out.String()
		}
		s, out := fresh()
		if s == nil {
			return "" // nothing to compare in TRANSACTION
		}
		out.Reset()
		s.Feed([]byte("CAPA\r\n"))
		var tags []string
		var sasl []string
		for _, l := range strings.Split(out.String(), "\r\n")[1:] {
			if l == "." || l == "" {
				break
			}
			f := strings.Fields(l)
			tags = append(tags, f[0])
			if f[0] == "SASL" {
				sasl = f[1:]
			}
		}
		has := func(tag string) bool { return slices.Contains(tags, tag) }
		ok := func(r string) bool { return strings.HasPrefix(r, "+") }
		// The runtime's RequireTLS refuses every login command before TLS
		// (the serve loop, not the session, answers them), and these
		// cases have no TLS.
		login := func(r string) bool { return ok(r) && !k.RequireTLS }
		checks := []struct {
			tag      string
			accepted bool
		}{
			{"USER", login(reply("USER u"))},
			{"STLS", ok(reply("STLS"))},
			{"UTF8", ok(reply("UTF8"))},
			{"LANG", ok(reply("LANG"))},
		}
		if k.LoggedIn {
			// Before login TOP and UIDL are the server's capabilities
			// (RFC 2449 §5 lets the list differ by state); after it,
			// what is listed is what runs.
			checks = append(checks, []struct {
				tag      string
				accepted bool
			}{
				{"TOP", strings.Contains(reply("TOP 1 0"), "no such message")},
				{"UIDL", ok(reply("UIDL"))},
			}...)
		}
		for _, c := range checks {
			if has(c.tag) != c.accepted {
				return "CAPA " + strings.Join(tags, ",") + ": " + c.tag + " announced " + boolWord(has(c.tag)) + ", accepted " + boolWord(c.accepted)
			}
		}
		for _, m := range []string{"PLAIN", "X-TOKEN"} {
			listed := slices.Contains(sasl, m)
			runs := login(reply("AUTH " + m))
			if listed != runs {
				return "SASL " + strings.Join(sasl, " ") + ": " + m + " listed " + boolWord(listed) + ", runs " + boolWord(runs)
			}
		}
		return ""
	}, caseGen))
	props.TestingRun(t)
}

func boolWord(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
