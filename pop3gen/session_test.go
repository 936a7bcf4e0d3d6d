package pop3gen

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pop3kit/pop3kit/internal/clause"
	"github.com/pop3kit/pop3kit/internal/pop3test"
	"github.com/pop3kit/pop3kit/pop3"
)

// recorder is a Handler that records the calls it gets and answers as its
// fields say: a user "alice" with password "secret", whose maildrop, drop,
// holds messages 1 and 2. It serves every optional interface.
type recorder struct {
	calls []string
	user  string
	fail  map[pop3.Cmd]error // a command to refuse
	// saslSteps is how many challenges AUTH sends before succeeding.
	saslSteps int
	step      int
	// mechs are the SASL mechanisms offered (nil: PLAIN).
	mechs []string
	// drop is the maildrop a login opens.
	drop *memDrop
	// capa is what Capa adds to CAPA.
	capa func(*pop3.CapaInfo)
}

// recorderBodies are the recorder's messages: 29 and 30 octets in CRLF form.
var recorderBodies = []string{"Subject: x\n\n.hidden\nbody\n", "Subject: y\n\nline 1\nline 2\n"}

const recorderTotals = "maildrop has 2 messages (59 octets)"

func newRecorder() *recorder {
	return &recorder{fail: map[pop3.Cmd]error{}, drop: &memDrop{bodies: recorderBodies}}
}

func (r *recorder) rec(s string) { r.calls = append(r.calls, s) }

func (r *recorder) result(c pop3.Cmd) error { return r.fail[c] }

var errBadLogin = &pop3.Error{Code: pop3.CodeAuth, Text: "invalid login"}

func (r *recorder) User(w *pop3.Writer, arg []byte) error {
	r.rec("USER " + string(arg))
	r.user = string(arg)
	if r.user != "alice" {
		return errBadLogin
	}
	return r.result(CmdUSER)
}

// Pass refuses all but alice's password; a refusal set in fail comes
// with the maildrop, which the core must then close.
func (r *recorder) Pass(user, secret []byte) (pop3.Maildrop, error) {
	r.rec("PASS " + string(user) + " " + string(secret))
	if string(user) != "alice" || string(secret) != "secret" {
		return nil, errBadLogin
	}
	if err := r.result(CmdPASS); err != nil {
		return r.drop, err
	}
	return r.drop, nil
}

func (r *recorder) APOP(name, digest []byte) (pop3.Maildrop, error) {
	r.rec("APOP " + string(name))
	if err := r.result(CmdAPOP); err != nil {
		return nil, err
	}
	return r.drop, nil
}

func (r *recorder) Mechanisms() []string {
	if r.mechs != nil {
		return r.mechs
	}
	return []string{"PLAIN"}
}

func (r *recorder) Auth(mechanism string) (pop3.SASLServer, error) {
	r.rec("AUTH " + mechanism)
	r.step = 0
	if err := r.result(CmdAUTH); err != nil && r.saslSteps == 0 {
		return nil, err
	}
	return recSASL{r}, nil
}

func (r *recorder) Authenticated() (pop3.Maildrop, error) {
	r.rec("AUTHENTICATED")
	if err := r.result(CmdAUTH); err != nil {
		return nil, err
	}
	return r.drop, nil
}

// recSASL is the recorder's side of a SASL exchange: saslSteps challenges
// ("" first, then "more"), then done.
type recSASL struct{ r *recorder }

func (x recSASL) Next(response []byte) ([]byte, bool, error) {
	r := x.r
	if response != nil {
		r.rec("NEXT " + string(response))
	}
	if r.step >= r.saslSteps {
		return nil, true, nil
	}
	r.step++
	if r.step == 1 {
		return nil, false, nil
	}
	return []byte("more"), false, nil
}

func (r *recorder) Capa(info *pop3.CapaInfo) {
	r.rec("CAPA")
	if r.capa != nil {
		r.capa(info)
	}
}
func (r *recorder) UTF8(w *pop3.Writer) error { r.rec("UTF8"); return r.result(CmdUTF8) }
func (r *recorder) Lang(w *pop3.Writer, arg []byte) error {
	r.rec("LANG " + string(arg))
	return r.result(CmdLANG)
}

var (
	_ Handler          = (*recorder)(nil)
	_ APOPHandler      = (*recorder)(nil)
	_ pop3.AuthHandler = (*recorder)(nil)
	_ UTF8Handler      = (*recorder)(nil)
	_ LangHandler      = (*recorder)(nil)
	_ pop3.CapaHandler = (*recorder)(nil)
)

// harness is a session on a recorder whose replies land in out.
type harness struct {
	t   *testing.T
	s   *pop3.Session
	r   *recorder
	out bytes.Buffer
}

func newHarness(t *testing.T, v Variations) *harness {
	h := &harness{t: t, r: newRecorder()}
	h.s = pop3.NewSession(h.r, pop3.NewWriter(&h.out), &v)
	return h
}

// send feeds one line and returns the reply text and the action.
func (h *harness) send(line string) (string, pop3.Action) {
	h.out.Reset()
	a := h.s.Feed([]byte(line + "\r\n"))
	return h.out.String(), a
}

// expect feeds a line and checks that the reply starts with prefix.
func (h *harness) expect(line, prefix string) string {
	h.t.Helper()
	got, _ := h.send(line)
	require.True(h.t, strings.HasPrefix(got, prefix), "%q: got %q, want prefix %q", line, got, prefix)
	return got
}

// login runs USER/PASS and checks the session is in TRANSACTION.
func (h *harness) login() {
	h.t.Helper()
	h.expect("USER alice", "+OK")
	h.expect("PASS secret", "+OK "+recorderTotals+"\r\n")
	require.Equal(h.t, pop3.StateTransaction, h.s.State())
}

// TestSessionAllowedStates checks every command in every state under every
// profile: a command not allowed in the state never reaches the handler or
// the maildrop and gets -ERR (C0002, C0003, RFC1939-5-TRANSACTION); an
// allowed one is served, by the handler where it has a method for it, by
// the core otherwise.
func TestSessionAllowedStates(t *testing.T) {
	clause.Covers(t, "C0002", "C0003", "RFC1939-5-TRANSACTION", "V0012")
	lines := map[pop3.Cmd]string{
		CmdUSER: "USER alice", CmdPASS: "PASS secret", CmdAPOP: "APOP alice c4c9334bac560ecc979e58001b3e22fb",
		CmdAUTH: "AUTH PLAIN", CmdSTLS: "STLS", CmdCAPA: "CAPA", CmdUTF8: "UTF8", CmdLANG: "LANG",
		CmdQUIT: "QUIT", CmdSTAT: "STAT", CmdLIST: "LIST", CmdRETR: "RETR 1", CmdDELE: "DELE 1",
		CmdNOOP: "NOOP", CmdRSET: "RSET", CmdTOP: "TOP 1 1", CmdUIDL: "UIDL 1",
	}
	require.Len(t, lines, len(protocol.Commands)-1, "a line for every command")
	for name, v := range profiles(t) {
		for i, info := range protocol.Commands[1:] {
			cmd := pop3.Cmd(i + 1)
			for _, st := range []pop3.State{pop3.StateAuthorization, pop3.StateTransaction} {
				t.Run(name+"/"+info.Name+"/"+st.String(), func(t *testing.T) {
					h := newHarness(t, v)
					h.s.SetMode(pop3.ModeSecure)
					if st == pop3.StateTransaction {
						h.login()
					}
					before := len(h.r.calls)
					opened, _, removes, _, _ := h.r.drop.state()
					got, _ := h.send(lines[cmd])
					reached := len(h.r.calls) > before
					opened2, _, removes2, _, _ := h.r.drop.state()
					touched := len(opened2) > len(opened) || removes2 > removes
					rejected := false
					for _, e := range []*pop3.Error{pop3test.Err("NotSupported"), pop3test.Err("NeedAuth"), pop3test.Err("AlreadyAuth"), pop3test.Err("NeedUser"), pop3test.Err("UnknownCommand")} {
						rejected = rejected || got == "-ERR "+e.Text+"\r\n"
					}
					// The commands a Handler method (of Handler or of an
					// optional interface) serves; the core answers the rest.
					byHandler := map[pop3.Cmd]bool{CmdUSER: true, CmdPASS: true, CmdAPOP: true, CmdAUTH: true, CmdCAPA: true, CmdUTF8: true, CmdLANG: true}[cmd]
					enabled := info.Enabled == nil || info.Enabled(&v)
					switch {
					case !enabled:
						assert.False(t, reached)
						assert.Equal(t, "-ERR "+pop3test.Err("NotSupported").Text+"\r\n", got, "V0012: disabled commands are not supported")
					case info.In&st == 0:
						assert.False(t, reached, "must not reach the handler")
						assert.False(t, touched, "must not reach the maildrop")
						want := pop3test.Err("AlreadyAuth")
						if st == pop3.StateAuthorization {
							want = pop3test.Err("NeedAuth")
						}
						assert.Equal(t, "-ERR "+want.Text+"\r\n", got)
					case cmd == CmdPASS && st == pop3.StateAuthorization:
						assert.False(t, reached, "PASS without USER never reaches the handler")
						assert.Equal(t, "-ERR "+pop3test.Err("NeedUser").Text+"\r\n", got)
					default:
						assert.False(t, rejected, "an allowed command must be served: %q", got)
						if byHandler {
							assert.True(t, reached, "allowed command must reach the handler: %q", got)
						}
						if cmd == CmdRETR || cmd == CmdTOP {
							assert.True(t, touched, "%s reads the message from the maildrop", cmd)
						}
					}
				})
			}
		}
	}
}

// TestSessionLoginAndQuit walks RFC1939-4-AUTHORIZATION → TRANSACTION →
// RFC1939-6-UPDATE and checks that QUIT in TRANSACTION enters UPDATE,
// where the core removes the marked message through the Maildrop.
func TestSessionLoginAndQuit(t *testing.T) {
	clause.Covers(t, "RFC1939-4-AUTHORIZATION", "RFC1939-6-UPDATE")
	h := newHarness(t, RFC1939())
	assert.Equal(t, pop3.StateAuthorization, h.s.State(), "RFC1939-4-AUTHORIZATION: sessions start in AUTHORIZATION")
	h.login()
	assert.Equal(t, []string{"USER alice", "PASS alice secret"}, h.r.calls, "PASS gets the USER argument the core kept")
	h.expect("STAT", "+OK 2 59\r\n")
	h.expect("DELE 1", "+OK message 1 deleted\r\n")
	_, removed, removes, _, _ := h.r.drop.state()
	assert.Zero(t, removes, "DELE only marks")
	assert.Empty(t, removed)
	got, a := h.send("QUIT")
	assert.Equal(t, "+OK signing off (1 message removed)\r\n", got)
	assert.Equal(t, pop3.ActionClose, a)
	assert.Equal(t, pop3.StateUpdate, h.s.State())
	_, removed, removes, _, _ = h.r.drop.state()
	assert.Equal(t, []int{0}, removed, "RFC1939-6-UPDATE: the marked message, and only it, is removed")
	assert.Equal(t, 1, removes)
}

// TestSessionQuitInAuthorization: RFC1939-4-QUIT closes without UPDATE.
func TestSessionQuitInAuthorization(t *testing.T) {
	clause.Covers(t, "RFC1939-4-QUIT")
	h := newHarness(t, RFC1939())
	got, a := h.send("QUIT")
	assert.Equal(t, "+OK signing off\r\n", got)
	assert.Equal(t, pop3.ActionClose, a)
	assert.Equal(t, pop3.StateAuthorization, h.s.State())
	assert.Empty(t, h.r.calls, "the core answers QUIT")
	_, _, removes, _, _ := h.r.drop.state()
	assert.Zero(t, removes, "no UPDATE: nothing is removed")
}

// TestSessionQuitError: a failed UPDATE still closes (V0006: the server may
// leave marked messages, the client learns it from -ERR).
func TestSessionQuitError(t *testing.T) {
	clause.Covers(t, "V0006")
	h := newHarness(t, RFC1939())
	h.login()
	h.expect("DELE 2", "+OK")
	h.r.drop.removeErr = &pop3.Error{Code: pop3.CodeSysTemp, Text: "some messages were not removed"}
	got, a := h.send("QUIT")
	assert.Equal(t, "-ERR [SYS/TEMP] some messages were not removed\r\n", got)
	assert.Equal(t, pop3.ActionClose, a)

	h = newHarness(t, RFC1939())
	h.login()
	h.expect("DELE 1", "+OK")
	h.r.drop.removeErr = errors.New("rename: no space left on device")
	got, a = h.send("QUIT")
	assert.Equal(t, "-ERR [SYS/TEMP] some messages marked deleted could not be removed\r\n", got, "another error: [SYS/TEMP], its text kept back")
	assert.Equal(t, pop3.ActionClose, a)
}

// TestSessionPassNeedsUser: RFC1939-7-PASS follows a successful USER only,
// immediately.
func TestSessionPassNeedsUser(t *testing.T) {
	clause.Covers(t, "RFC1939-7-PASS")
	h := newHarness(t, RFC1939())
	h.expect("PASS secret", "-ERR "+pop3test.Err("NeedUser").Text)
	h.expect("USER alice", "+OK")
	h.expect("NOOP", "-ERR")
	h.expect("PASS secret", "-ERR "+pop3test.Err("NeedUser").Text)
	h.expect("USER bob", "-ERR [AUTH]")
	h.expect("PASS secret", "-ERR "+pop3test.Err("NeedUser").Text)
	h.expect("USER alice", "+OK")
	h.expect("PASS wrong", "-ERR [AUTH] invalid login")
	assert.Equal(t, pop3.StateAuthorization, h.s.State())
	assert.Equal(t, "PASS alice wrong", h.r.calls[len(h.r.calls)-1], "PASS gets the name of the USER before it")
	h.expect("USER bob", "-ERR [AUTH]")
	h.expect("USER alice", "+OK")
	h.expect("PASS secret", "+OK "+recorderTotals)
	assert.Equal(t, "PASS alice secret", h.r.calls[len(h.r.calls)-1])
}

// TestSessionUserAlwaysOK: under Exchange, USER answers +OK for an unknown
// user and the refusal comes at PASS (V0008, V0009).
func TestSessionUserAlwaysOK(t *testing.T) {
	clause.Covers(t, "V0008", "V0009")
	for _, tc := range []struct {
		v    Variations
		want string
	}{{RFC1939(), "-ERR [AUTH] invalid login\r\n"}, {Exchange2007(), "+OK\r\n"}, {Exchange2010(), "+OK\r\n"}} {
		h := newHarness(t, tc.v)
		h.s.SetMode(pop3.ModeSecure)
		got, _ := h.send("USER nobody")
		assert.Equal(t, tc.want, got)
		if tc.v.UserAlwaysOK {
			h.expect("PASS secret", "-ERR [AUTH] invalid login")
			assert.Equal(t, "PASS nobody secret", h.r.calls[len(h.r.calls)-1], "PASS gets the name USER was given")
		}
	}
}

// TestSessionPlaintextRefused: V0010 — where plaintext is not permitted,
// USER and PASS get -ERR [AUTH] whatever the user, and the handler never
// sees the name.
func TestSessionPlaintextRefused(t *testing.T) {
	clause.Covers(t, "V0010")
	v := Exchange2010()
	require.Equal(t, pop3.PlaintextAuthSecure, v.PlaintextAuth)
	h := newHarness(t, v)
	for _, user := range []string{"alice", "nobody"} {
		got, _ := h.send("USER " + user)
		assert.Equal(t, "-ERR [AUTH] "+pop3.ErrPlaintextRefused.Text+"\r\n", got)
	}
	assert.Empty(t, h.r.calls)
	assert.False(t, h.s.PlaintextAllowed())
	h.s.SetMode(pop3.ModeSecure)
	assert.True(t, h.s.PlaintextAllowed())
	h.login()

	require.NoError(t, v.Set("PlaintextAuth", "never"))
	h = newHarness(t, v)
	h.s.SetMode(pop3.ModeTLS)
	h.expect("USER alice", "-ERR [AUTH]")
}

// TestSessionPlaintextDisabled: V0010 — under PlaintextAuth=never the
// refusal says plaintext is disabled on this server, not that the
// connection is insecure: even under TLS, for USER, PASS and a handler's
// refusal of a plaintext SASL mechanism alike; under secure the old text
// stays.
func TestSessionPlaintextDisabled(t *testing.T) {
	clause.Covers(t, "V0010")
	v := RFC1939()
	require.NoError(t, v.Set("PlaintextAuth", "never"))
	h := newHarness(t, v)
	h.s.SetMode(pop3.ModeTLS | pop3.ModeSecure)
	assert.Same(t, pop3.ErrPlaintextDisabled, h.s.PlaintextRefusal())
	got, _ := h.send("USER alice")
	assert.Equal(t, "-ERR [AUTH] plaintext authentication is disabled on this server\r\n", got)
	got, _ = h.send("PASS secret")
	assert.Equal(t, "-ERR "+pop3test.Err("NeedUser").Text+"\r\n", got)
	h.r.fail[CmdAUTH] = pop3.ErrPlaintextRefused
	got, _ = h.send("AUTH PLAIN")
	assert.Equal(t, "-ERR [AUTH] "+pop3.ErrPlaintextDisabled.Text+"\r\n", got)

	require.NoError(t, v.Set("PlaintextAuth", "secure"))
	h = newHarness(t, v)
	assert.Same(t, pop3.ErrPlaintextRefused, h.s.PlaintextRefusal())
	got, _ = h.send("USER alice")
	assert.Equal(t, "-ERR [AUTH] "+pop3.ErrPlaintextRefused.Text+"\r\n", got)
}

// TestSessionStickyUser: RFC1939-7-PASS under StickyUser (RFC1122-1.2.2,
// as Dovecot): PASS may follow a successful USER with other commands,
// refused ones included, between; a failed USER, a failed PASS or STLS
// forgets the name. Off, PASS must come immediately.
func TestSessionStickyUser(t *testing.T) {
	clause.Covers(t, "RFC1122-1.2.2", "RFC1939-7-PASS")
	for _, sticky := range []bool{false, true} {
		v := RFC1939()
		v.StickyUser = sticky
		h := newHarness(t, v)
		want := map[bool]string{false: "-ERR " + pop3test.Err("NeedUser").Text, true: "+OK " + recorderTotals}[sticky]
		h.expect("USER alice", "+OK")
		h.expect("CAPA", "+OK")
		h.expect("NOOP", "-ERR")
		h.expect("PASS secret", want)
		if sticky {
			assert.Equal(t, "PASS alice secret", h.r.calls[len(h.r.calls)-1], "the kept name survives the commands between")
		}

		// A failed PASS needs a new USER, sticky or not (as Dovecot).
		h = newHarness(t, v)
		h.expect("USER alice", "+OK")
		h.expect("PASS wrong", "-ERR [AUTH]")
		h.expect("PASS secret", "-ERR "+pop3test.Err("NeedUser").Text)
		h.expect("USER alice", "+OK")
		h.expect("CAPA", "+OK")
		h.expect("PASS secret", want)

		// A failed USER forgets the earlier name, sticky or not.
		h = newHarness(t, v)
		h.expect("USER alice", "+OK")
		h.expect("USER bob", "-ERR [AUTH]")
		h.expect("CAPA", "+OK")
		h.expect("PASS secret", "-ERR "+pop3test.Err("NeedUser").Text)

		// STLS forgets it too (RFC 2595 §4).
		h = newHarness(t, v)
		h.expect("USER alice", "+OK")
		h.s.TLSStarted()
		h.expect("PASS secret", "-ERR "+pop3test.Err("NeedUser").Text)
	}
}

// TestSessionSASL: RFC5034-4-AUTH continuation lines, RFC5034-4-CANCEL and
// bad base64.
func TestSessionSASL(t *testing.T) {
	clause.Covers(t, "MSPOP3-2.2.1", "RFC5034-4-AUTH", "RFC5034-4-CANCEL")
	h := newHarness(t, RFC1939())
	h.r.saslSteps = 2
	assert.Equal(t, "+ \r\n", h.expect("AUTH PLAIN", "+ "), "an empty challenge is \"+ \"")
	assert.True(t, h.s.InSASL())
	assert.Equal(t, RFC1939().MaxSASLOctets, h.s.MaxLine())
	h.expect("AGFsaWNlAHNlY3JldA==", "+ bW9yZQ==")
	h.expect("", "+OK "+recorderTotals+"\r\n")
	assert.Equal(t, pop3.StateTransaction, h.s.State())
	assert.Equal(t, "AUTHENTICATED", h.r.calls[len(h.r.calls)-1])
	h.expect("STAT", "+OK 2 59\r\n")

	// Authenticated refuses: -ERR, no login.
	h = newHarness(t, RFC1939())
	h.r.saslSteps = 1
	h.expect("AUTH PLAIN", "+ ")
	h.r.fail[CmdAUTH] = errBadLogin
	h.expect("AGFsaWNlAHNlY3JldA==", "-ERR [AUTH] invalid login\r\n")
	assert.Equal(t, pop3.StateAuthorization, h.s.State())

	// Cancel: "*" gets -ERR and the handler is told.
	h = newHarness(t, RFC1939())
	h.r.saslSteps = 1
	h.expect("AUTH PLAIN", "+ ")
	got, _ := h.send("*")
	assert.Equal(t, "-ERR "+pop3test.Err("AuthCancelled").Text+"\r\n", got)
	assert.False(t, h.s.InSASL())
	assert.Equal(t, pop3.StateAuthorization, h.s.State())

	// Bad base64 ends the exchange with -ERR.
	h = newHarness(t, RFC1939())
	h.r.saslSteps = 1
	h.expect("AUTH PLAIN", "+ ")
	h.expect("not base64!", "-ERR "+pop3test.Err("BadBase64").Text)
	assert.False(t, h.s.InSASL())

	// A continuation line longer than MaxSASLOctets.
	h = newHarness(t, RFC1939())
	h.r.saslSteps = 1
	h.expect("AUTH PLAIN", "+ ")
	h.expect(strings.Repeat("A", RFC1939().MaxSASLOctets), "-ERR "+pop3test.Err("SASLTooLong").Text)

	// MSPOP3-2.2.1: the bare AUTH listing, on a secure connection.
	h = newHarness(t, Exchange2010())
	h.s.SetMode(pop3.ModeSecure)
	assert.Equal(t, "+OK SASL mechanisms follow\r\nPLAIN\r\n.\r\n", h.expect("AUTH", "+OK"))
	assert.Equal(t, pop3.StateAuthorization, h.s.State(), "listing the mechanisms is no login")
	// Where plaintext logins are not allowed (Exchange: secure
	// connections only), PLAIN is neither listed nor run.
	h = newHarness(t, Exchange2010())
	assert.Equal(t, "+OK SASL mechanisms follow\r\n.\r\n", h.expect("AUTH", "+OK"))
}

// plaintextToken is a handler whose mechanisms are PLAIN and XTOKEN, and
// which says XTOKEN carries a bearer token, PLAIN not (as a handler that
// knows its mechanisms may).
type plaintextToken struct{ *recorder }

func (p plaintextToken) Mechanisms() []string         { return []string{"PLAIN", "XTOKEN"} }
func (p plaintextToken) IsPlaintext(mech string) bool { return mech == "XTOKEN" }

// TestSessionPlaintextMechanismsByProperty: the core refuses and hides
// the mechanisms a handler declares plaintext-equivalent (IsPlaintext)
// where plaintext logins are not allowed, whatever their names, and only
// those (MS-STANXPOP3 V0010).
func TestSessionPlaintextMechanismsByProperty(t *testing.T) {
	clause.Covers(t, "V0010")
	v := Exchange2010() // PlaintextAuth secure
	var out bytes.Buffer
	s := pop3.NewSession(plaintextToken{newRecorder()}, pop3.NewWriter(&out), &v)
	feed := func(line string) string {
		out.Reset()
		s.Feed([]byte(line + "\r\n"))
		return out.String()
	}
	assert.Equal(t, "+OK SASL mechanisms follow\r\nPLAIN\r\n.\r\n", feed("AUTH"), "XTOKEN is hidden")
	assert.Equal(t, "-ERR [AUTH] "+pop3.ErrPlaintextRefused.Text+"\r\n", feed("AUTH XTOKEN"))
	assert.Contains(t, feed("CAPA"), "SASL PLAIN\r\n")
	s.SetMode(pop3.ModeSecure)
	assert.Equal(t, "+OK SASL mechanisms follow\r\nPLAIN\r\nXTOKEN\r\n.\r\n", feed("AUTH"), "both on a secure connection")
}

// TestSessionSASLInTheCore: the core owns the SASL exchange (RFC 5034
// §4): "=" is an empty initial response (not none), an initial response
// is base64-decoded before the mechanism sees it, bad base64 and unknown
// mechanisms are refused before the handler is asked, and a
// plaintext-equivalent mechanism where plaintext is not allowed gets the
// V0010 refusal.
func TestSessionSASLInTheCore(t *testing.T) {
	clause.Covers(t, "RFC5034-4-AUTH", "RFC5034-4-INITIAL", "V0010")
	h := newHarness(t, RFC1939())
	h.expect("AUTH PLAIN =", "+OK")
	assert.Contains(t, h.r.calls, "NEXT ", "= is an empty response, given as such")

	h = newHarness(t, RFC1939())
	h.expect("AUTH plain AGFsaWNlAHNlY3JldA==", "+OK")
	assert.Contains(t, h.r.calls, "AUTH PLAIN", "the mechanism reaches the handler in upper case")
	assert.Contains(t, h.r.calls, "NEXT \x00alice\x00secret", "decoded")

	h = newHarness(t, RFC1939())
	assert.Equal(t, "-ERR "+pop3.ErrUnknownMechanism.Text+"\r\n", h.expect("AUTH GSSAPI", "-ERR"))
	assert.Empty(t, h.r.calls, "the handler is not asked for a mechanism it does not list")

	v := RFC1939()
	require.NoError(t, v.Set("PlaintextAuth", "never"))
	h = newHarness(t, v)
	h.r.mechs = []string{} // a server lists none where plaintext is refused
	assert.Equal(t, "-ERR [AUTH] "+pop3.ErrPlaintextDisabled.Text+"\r\n", h.expect("AUTH PLAIN", "-ERR"))
}

// TestSessionSTLS: RFC2595-4-STLS asks the connection to start TLS, and is
// refused inside TLS; TLSStarted forgets the USER given before.
func TestSessionSTLS(t *testing.T) {
	clause.Covers(t, "RFC2595-4-STLS")
	h := newHarness(t, RFC1939())
	got, a := h.send("STLS")
	assert.Equal(t, "-ERR TLS is not available on this connection\r\n", got, "no TLS offered (SetTLS)")
	assert.Equal(t, pop3.ActionContinue, a)
	h.s.SetTLS(true, false)
	h.expect("USER alice", "+OK")
	got, a = h.send("STLS")
	assert.Equal(t, "+OK Begin TLS negotiation now\r\n", got)
	assert.Equal(t, pop3.ActionStartTLS, a)
	assert.Equal(t, []string{"USER alice"}, h.r.calls, "the core answers STLS")
	h.s.TLSStarted()
	assert.Equal(t, pop3.ModeTLS|pop3.ModeSecure, h.s.Mode())
	h.expect("PASS secret", "-ERR "+pop3test.Err("NeedUser").Text)
	got, a = h.send("STLS")
	assert.Equal(t, "-ERR "+pop3test.Err("TLSActive").Text+"\r\n", got)
	assert.Equal(t, pop3.ActionContinue, a)
}

// TestSessionUTF8: RFC6856-2-UTF8 switches the mode on.
func TestSessionUTF8(t *testing.T) {
	clause.Covers(t, "RFC6856-2-UTF8")
	h := newHarness(t, RFC1939())
	h.expect("UTF8", "+OK")
	assert.Equal(t, pop3.ModeUTF8, h.s.Mode()&pop3.ModeUTF8)
}

// TestSessionMaxBadCommands: C0005 — after MaxBadCommands rejected
// commands in a row the session answers once more and closes; a good
// command resets the count.
func TestSessionMaxBadCommands(t *testing.T) {
	clause.Covers(t, "C0005")
	v := RFC1939()
	require.NoError(t, v.Set("MaxBadCommands", "3"))
	h := newHarness(t, v)
	h.expect("BOGUS", "-ERR")
	h.expect("BOGUS", "-ERR")
	h.expect("CAPA", "+OK")
	h.expect("BOGUS", "-ERR")
	h.expect("BOGUS", "-ERR")
	got, a := h.send("BOGUS")
	assert.Equal(t, "-ERR "+pop3test.Err("TooManyErrors").Text+"\r\n", got)
	assert.Equal(t, pop3.ActionClose, a)
}

// TestSessionHandlerRefusalsAreNotBadCommands: C0005 — only protocol
// errors count toward MaxBadCommands; a handler's own refusal (RETR of a
// message that does not exist, twenty times over) leaves the session open.
func TestSessionHandlerRefusalsAreNotBadCommands(t *testing.T) {
	clause.Covers(t, "C0005")
	v := RFC1939()
	require.NoError(t, v.Set("MaxBadCommands", "3"))
	h := newHarness(t, v)
	h.login()
	for range 20 {
		got, a := h.send("RETR 99")
		require.Equal(t, "-ERR no such message\r\n", got)
		require.Equal(t, pop3.ActionContinue, a)
	}
	h.expect("BOGUS", "-ERR")
	h.expect("BOGUS", "-ERR")
	_, a := h.send("BOGUS")
	assert.Equal(t, pop3.ActionClose, a, "protocol errors still count")
}

// TestSessionFailureAfterReplyBegan: RFC1939-3-MULTILINE — a handler that
// fails after its multi-line reply has begun must not have -ERR written
// into the body (the client would read it as message text and wait for a
// terminator that never comes): the session closes the connection instead.
func TestSessionFailureAfterReplyBegan(t *testing.T) {
	clause.Covers(t, "RFC1939-3-MULTILINE")
	h := newHarness(t, RFC1939())
	h.login()
	h.r.drop.broken = map[int]bool{0: true, 1: true}
	got, a := h.send("TOP 1 0")
	assert.Equal(t, "+OK top of message follows\r\nSubject: x\r\n", got, "nothing after the partial body")
	assert.Equal(t, pop3.ActionClose, a)

	h = newHarness(t, RFC1939())
	h.login()
	h.r.drop.broken = map[int]bool{1: true}
	h.expect("RETR 1", "+OK 29 octets\r\n")
	got, a = h.send("RETR 2")
	assert.Equal(t, "+OK 30 octets\r\nSubject: y\r\n", got, "nothing after the partial body")
	assert.Equal(t, pop3.ActionClose, a)
}

// TestSessionTimers: V0002 — the unauthenticated timer before login, the
// authenticated one after; RFC1939-3-TIMER — at least 10 minutes in rfc1939.
func TestSessionTimers(t *testing.T) {
	clause.Covers(t, "RFC1939-3-TIMER", "V0002")
	h := newHarness(t, Exchange2010())
	h.s.SetMode(pop3.ModeSecure)
	assert.Equal(t, 60*time.Second, h.s.IdleTimeout())
	h.login()
	assert.Equal(t, 1800*time.Second, h.s.IdleTimeout())
	r := RFC1939()
	assert.GreaterOrEqual(t, r.UnauthTimeout, 10*time.Minute)
	assert.GreaterOrEqual(t, r.AuthTimeout, 10*time.Minute)
}

// TestSessionAutologout: V0003 — Exchange sends a notice, RFC 1939 closes
// silently.
func TestSessionAutologout(t *testing.T) {
	clause.Covers(t, "RFC1939-3-TIMER", "V0003")
	h := newHarness(t, Exchange2010())
	h.s.Autologout()
	assert.Equal(t, "-ERR "+pop3test.Err("Autologout").Text+"\r\n", h.out.String())
	h = newHarness(t, RFC1939())
	h.s.Autologout()
	assert.Empty(t, h.out.String(), "RFC1939-3-TIMER: no response on autologout")
}

// TestSessionInformativeErrors: V0001 — informative text after -ERR, or
// the bare status where the variation is off.
func TestSessionInformativeErrors(t *testing.T) {
	clause.Covers(t, "V0001")
	h := newHarness(t, Exchange2010())
	assert.Equal(t, "-ERR "+pop3test.Err("UnknownCommand").Text+"\r\n", h.expect("FOO", "-ERR"))
	v := Exchange2010()
	v.InformativeErrors = false
	h = newHarness(t, v)
	assert.Equal(t, "-ERR\r\n", h.expect("FOO", "-ERR"))
	assert.Equal(t, "-ERR [AUTH]\r\n", h.expect("USER x", "-ERR"), "the code stays")
}

// TestSessionHandlerErrors: RFC3206-4-SYS — an error that is not an *Error
// becomes [SYS/TEMP] internal error and never leaks its text.
func TestSessionHandlerErrors(t *testing.T) {
	clause.Covers(t, "RFC3206-4-SYS")
	h := newHarness(t, RFC1939())
	h.r.fail[CmdPASS] = errors.New("open /var/mail/secret: permission denied")
	h.expect("USER alice", "+OK")
	got, _ := h.send("PASS secret")
	assert.Equal(t, "-ERR [SYS/TEMP] internal server error\r\n", got)
	assert.Equal(t, pop3.StateAuthorization, h.s.State())
	_, _, _, _, closed := h.r.drop.state()
	assert.Equal(t, 1, closed, "a maildrop returned with an error is closed")

	h = newHarness(t, RFC1939())
	h.r.fail[CmdLANG] = errors.New("open /usr/share/pop3/lang: permission denied")
	got, _ = h.send("LANG")
	assert.Equal(t, "-ERR [SYS/TEMP] internal server error\r\n", got)

	h = newHarness(t, RFC1939())
	h.login()
	h.r.drop.openErr = errors.New("open /var/mail/secret/cur/1: permission denied")
	got, _ = h.send("RETR 1")
	assert.Equal(t, "-ERR [SYS/TEMP] message cannot be read now\r\n", got, "a Maildrop's error does not leak either")
}

// TestSessionPipelining: RFC2449-6.6-PIPELINING — commands fed in one go
// are answered in order, exactly as when sent one by one.
func TestSessionPipelining(t *testing.T) {
	clause.Covers(t, "RFC1939-3-MULTILINE", "RFC2449-6.6-PIPELINING")
	script := []string{"USER alice", "PASS secret", "STAT", "LIST", "RETR 1", "UIDL 1", "NOOP", "BOGUS", "QUIT"}
	one := newHarness(t, RFC1939())
	var want strings.Builder
	for _, l := range script {
		got, _ := one.send(l)
		want.WriteString(got)
	}
	batch := newHarness(t, RFC1939())
	data := []byte(strings.Join(script, "\r\n") + "\r\n")
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		batch.s.Feed(data[:i+1])
		data = data[i+1:]
	}
	assert.Equal(t, want.String(), batch.out.String())
	assert.Contains(t, want.String(), "+OK 29 octets\r\nSubject: x\r\n\r\n..hidden\r\nbody\r\n.\r\n", "RFC1939-3-MULTILINE")
}

// TestSessionCapaInfo: RFC2449-5-CAPA — what CAPA announces follows the
// state (USER, SASL and STLS before login only), the connection (STLS
// where TLS can start; no login offered before TLS where it is required)
// and what the handler implements (no UTF8 or LANG line for a handler
// without their optional interfaces, whatever the profile says).
func TestSessionCapaInfo(t *testing.T) {
	clause.Covers(t, "RFC2449-5-CAPA", "RFC2595-4-STLS")
	h := newHarness(t, RFC1939())
	assert.Equal(t, pop3.CapaInfo{Plaintext: true, SASL: []string{"PLAIN"}}, h.s.CapaInfo())
	h.s.SetTLS(true, false)
	assert.Equal(t, pop3.CapaInfo{Plaintext: true, SASL: []string{"PLAIN"}, STLS: true}, h.s.CapaInfo())
	h.s.SetTLS(true, true)
	assert.Equal(t, pop3.CapaInfo{STLS: true}, h.s.CapaInfo(), "no login offered before TLS")
	h.s.TLSStarted()
	assert.Equal(t, pop3.CapaInfo{Plaintext: true, SASL: []string{"PLAIN"}}, h.s.CapaInfo())
	h.login()
	assertNoLogin(t, h.s.CapaInfo(), "after login: none of them")

	var out bytes.Buffer
	s := pop3.NewSession(&dropSession{drop: &memDrop{}}, pop3.NewWriter(&out), dialect(RFC1939()))
	assert.Equal(t, pop3.CapaInfo{Plaintext: true}, s.CapaInfo(), "no AuthHandler: no SASL mechanisms")
	out.Reset()
	s.Feed([]byte("CAPA\r\n"))
	assert.NotContains(t, out.String(), "UTF8")
	assert.NotContains(t, out.String(), "LANG")
	assert.NotContains(t, out.String(), "SASL")
	out.Reset()
	out.WriteString(h.expect("CAPA", "+OK"))
	assert.NotContains(t, out.String(), "UTF8", "after login: UTF8 is valid only before it (RFC 6856 §2)")
	assert.Contains(t, out.String(), "LANG", "LANG is valid after login too (RFC 6856 §3)")
	out.Reset()
	out.WriteString(newHarness(t, RFC1939()).expect("CAPA", "+OK"))
	assert.Contains(t, out.String(), "UTF8", "the recorder serves UTF8, before login")
}

// TestSessionCapa: RFC2449-5-CAPA — the core answers CAPA for the current
// state, and a CapaHandler adds what only the server knows
// (Implementation, Expire, LoginDelay, lines of its own) to what the core
// filled in.
func TestSessionCapa(t *testing.T) {
	clause.Covers(t, "RFC2449-5-CAPA", "RFC2449-6.9-IMPLEMENTATION", "RFC2449-6.7-EXPIRE", "RFC2449-6.5-LOGIN-DELAY")
	h := newHarness(t, RFC1939())
	h.s.SetMode(pop3.ModeSecure)
	var seen pop3.CapaInfo
	h.r.capa = func(c *pop3.CapaInfo) {
		seen = *c
		c.Implementation = "pop3gen-test"
		c.Expire = "NEVER"
		c.LoginDelay = 30
		c.Lines = []string{"X-EXTRA one", ".dotted"}
	}
	got := h.expect("CAPA", "+OK")
	assert.Equal(t, h.s.CapaInfo(), seen, "the handler sees what the core filled in")
	assert.Equal(t, []string{"CAPA"}, h.r.calls)
	want := "+OK Capability list follows\r\nTOP\r\nUSER\r\nSASL PLAIN\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nLOGIN-DELAY 30\r\nPIPELINING\r\nEXPIRE NEVER\r\nUIDL\r\nIMPLEMENTATION pop3gen-test\r\n"
	assert.True(t, strings.HasPrefix(got, want), "got %q", got)
	assert.True(t, strings.HasSuffix(got, "X-EXTRA one\r\n..dotted\r\n.\r\n"), "the handler's lines last, dot-stuffed: %q", got)

	h.login()
	got = h.expect("CAPA", "+OK")
	assertNoLogin(t, seen, "after login the core offers no login")
	assert.NotContains(t, got, "\r\nUSER\r\n")
	assert.NotContains(t, got, "SASL")
	assert.Contains(t, got, "IMPLEMENTATION pop3gen-test\r\n")

	// A handler without CapaHandler: the core's lines only.
	var out bytes.Buffer
	s := pop3.NewSession(&dropSession{drop: &memDrop{}}, pop3.NewWriter(&out), dialect(RFC1939()))
	s.SetTLS(true, false)
	s.Feed([]byte("CAPA\r\n"))
	assert.Equal(t, "+OK Capability list follows\r\nTOP\r\nUSER\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nUIDL\r\nSTLS\r\n.\r\n", out.String())
}

// TestSessionAuthOptional: RFC5034-4-AUTH — AUTH is served only by a
// Handler that implements AuthHandler: without it AUTH, bare or with a
// mechanism, answers not supported, and CAPA has no SASL line.
func TestSessionAuthOptional(t *testing.T) {
	clause.Covers(t, "RFC5034-4-AUTH", "MSPOP3-2.2.1")
	for _, v := range []Variations{RFC1939(), Exchange2010()} {
		var out bytes.Buffer
		s := pop3.NewSession(&dropSession{drop: &memDrop{}}, pop3.NewWriter(&out), &v)
		s.SetMode(pop3.ModeSecure)
		lines := []string{"AUTH PLAIN AGFsaWNlAHNlY3JldA==", "AUTH GSSAPI"}
		if v.AuthListing {
			lines = append(lines, "AUTH") // elsewhere a bare AUTH does not parse
		}
		for _, line := range lines {
			out.Reset()
			a := s.Feed([]byte(line + "\r\n"))
			assert.Equal(t, "-ERR "+pop3test.Err("NotSupported").Text+"\r\n", out.String(), line)
			assert.Equal(t, pop3.ActionContinue, a)
			assert.False(t, s.InSASL())
			assert.Equal(t, pop3.StateAuthorization, s.State())
		}
		out.Reset()
		s.Feed([]byte("CAPA\r\n"))
		assert.NotContains(t, out.String(), "SASL")
	}
}

// minimalHandler implements only what Handler requires.
type minimalHandler struct{ drop *memDrop }

func (m minimalHandler) User(w *pop3.Writer, arg []byte) error { return nil }
func (m minimalHandler) Pass(user, secret []byte) (pop3.Maildrop, error) {
	if m.drop == nil {
		return nil, nil
	}
	return m.drop, nil
}

// TestSessionMinimalHandler: C0006 — a Handler with only USER and PASS
// serves every minimal RFC 1939 command, and TOP and UIDL: the core
// answers them from the Maildrop. A login that returns no maildrop and no
// error is refused.
func TestSessionMinimalHandler(t *testing.T) {
	clause.Covers(t, "C0006", "RFC1939-5-NOOP")
	d := &memDrop{bodies: recorderBodies}
	var out bytes.Buffer
	s := pop3.NewSession(minimalHandler{drop: d}, pop3.NewWriter(&out), dialect(RFC1939()))
	s.SetMode(pop3.ModeSecure)
	send := func(line string) string {
		out.Reset()
		s.Feed([]byte(line + "\r\n"))
		return out.String()
	}
	assert.Equal(t, "+OK\r\n", send("USER alice"), "the core writes +OK for a User that wrote nothing")
	assert.Equal(t, "+OK "+recorderTotals+"\r\n", send("PASS secret"))
	for line, want := range map[string]string{
		"STAT":    "+OK 2 59\r\n",
		"LIST 2":  "+OK 2 30\r\n",
		"UIDL 1":  "+OK 1 uid-a\r\n",
		"NOOP":    "+OK\r\n",
		"TOP 2 0": "+OK top of message follows\r\nSubject: y\r\n\r\n.\r\n",
		"RETR 2":  "+OK 30 octets\r\nSubject: y\r\n\r\nline 1\r\nline 2\r\n.\r\n",
	} {
		assert.Equal(t, want, send(line), line)
	}
	assert.Equal(t, "+OK message 2 deleted\r\n", send("DELE 2"))
	assert.Equal(t, "+OK "+recorderTotals+"\r\n", send("RSET"))
	assert.Equal(t, "+OK signing off (0 messages removed)\r\n", send("QUIT"))

	s = pop3.NewSession(minimalHandler{}, pop3.NewWriter(&out), dialect(RFC1939()))
	s.SetMode(pop3.ModeSecure)
	send("USER alice")
	got := send("PASS secret")
	assert.True(t, strings.HasPrefix(got, "-ERR [SYS/TEMP]"), "no maildrop: %q", got)
	assert.Equal(t, pop3.StateAuthorization, s.State())
}

// dialect returns v as the pop3.Dialect a session serves.
func dialect(v Variations) *Variations { return &v }

// assertNoLogin asserts that c offers no login: after login CAPA lists
// none of USER, SASL, STLS.
func assertNoLogin(t *testing.T, c pop3.CapaInfo, msg string) {
	t.Helper()
	assert.False(t, c.Plaintext, msg)
	assert.Empty(t, c.SASL, msg)
	assert.False(t, c.STLS, msg)
}
