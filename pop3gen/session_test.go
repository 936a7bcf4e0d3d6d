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
)

// recorder is a Handler that records the calls it gets and answers as its
// fields say: a user "alice" with password "secret"; messages 1 and 2.
type recorder struct {
	calls []string
	user  string
	fail  map[Cmd]error // a command to refuse
	// saslSteps is how many challenges AUTH sends before succeeding.
	saslSteps int
	step      int
	// mechs are the SASL mechanisms offered (nil: PLAIN).
	mechs []string
	// begin makes a command write the start of its reply before it
	// returns its result: a handler that fails midway.
	begin map[Cmd]bool
}

func (r *recorder) rec(s string) { r.calls = append(r.calls, s) }

func (r *recorder) result(c Cmd) error { return r.fail[c] }

var errBadLogin = &Error{Code: CodeAuth, Text: "invalid login"}

func (r *recorder) User(w *Writer, arg []byte) error {
	r.rec("USER " + string(arg))
	r.user = string(arg)
	if r.user != "alice" {
		return errBadLogin
	}
	return r.result(CmdUSER)
}

func (r *recorder) Pass(w *Writer, secret []byte) error {
	r.rec("PASS " + string(secret))
	if r.user != "alice" || string(secret) != "secret" {
		return errBadLogin
	}
	w.OK("maildrop ready")
	return nil
}

func (r *recorder) APOP(w *Writer, name, digest []byte) error {
	r.rec("APOP " + string(name))
	return r.result(CmdAPOP)
}

func (r *recorder) Mechanisms() []string {
	if r.mechs != nil {
		return r.mechs
	}
	return []string{"PLAIN"}
}

func (r *recorder) Auth(mechanism string) (SASLServer, error) {
	r.rec("AUTH " + mechanism)
	r.step = 0
	if err := r.result(CmdAUTH); err != nil && r.saslSteps == 0 {
		return nil, err
	}
	return recSASL{r}, nil
}

func (r *recorder) Authenticated(w *Writer) error {
	r.rec("AUTHENTICATED")
	return r.result(CmdAUTH)
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

func (r *recorder) STLS(w *Writer) error { r.rec("STLS"); return r.result(CmdSTLS) }
func (r *recorder) Capa(w *Writer) error {
	r.rec("CAPA")
	v := RFC1939()
	WriteCapa(w, &v, &CapaInfo{})
	return nil
}
func (r *recorder) UTF8(w *Writer) error { r.rec("UTF8"); return r.result(CmdUTF8) }
func (r *recorder) Lang(w *Writer, arg []byte) error {
	r.rec("LANG " + string(arg))
	return r.result(CmdLANG)
}
func (r *recorder) Quit(w *Writer) error {
	r.rec("QUIT")
	return r.result(CmdQUIT)
}
func (r *recorder) Update(w *Writer) error {
	r.rec("UPDATE")
	return r.result(CmdQUIT)
}
func (r *recorder) Stat(w *Writer) error { r.rec("STAT"); w.Stat(2, 300); return nil }
func (r *recorder) List(w *Writer, msg uint32) error {
	r.rec("LIST")
	if msg != 0 {
		w.ScanListing(false, int(msg), 100)
		return nil
	}
	w.Begin("2 messages")
	w.ScanListing(true, 1, 100)
	w.ScanListing(true, 2, 200)
	w.End()
	return nil
}
func (r *recorder) Retr(w *Writer, msg uint32) error {
	r.rec("RETR")
	if msg > 2 {
		return &Error{Text: "no such message"}
	}
	w.Begin("message follows")
	d := w.Message()
	_, _ = d.Write([]byte("Subject: x\n\n.hidden\nbody\n"))
	return d.Close()
}
func (r *recorder) Dele(w *Writer, msg uint32) error { r.rec("DELE"); return r.result(CmdDELE) }
func (r *recorder) Noop(w *Writer) error             { r.rec("NOOP"); return nil }
func (r *recorder) Rset(w *Writer) error             { r.rec("RSET"); return nil }
func (r *recorder) Top(w *Writer, msg, lines uint32) error {
	r.rec("TOP")
	if r.begin[CmdTOP] {
		w.Begin("top of message follows")
		_, _ = w.Message().Write([]byte("Subject: x\n"))
	}
	return r.result(CmdTOP)
}
func (r *recorder) UIDL(w *Writer, msg uint32) error {
	r.rec("UIDL")
	return w.UniqueID(false, int(msg), "1001")
}

var (
	_ Handler     = (*recorder)(nil)
	_ APOPHandler = (*recorder)(nil)
	_ UTF8Handler = (*recorder)(nil)
	_ LangHandler = (*recorder)(nil)
)

// harness is a session on a recorder whose replies land in out.
type harness struct {
	t   *testing.T
	s   *Session
	r   *recorder
	out bytes.Buffer
}

func newHarness(t *testing.T, v Variations) *harness {
	h := &harness{t: t, r: &recorder{fail: map[Cmd]error{}}}
	h.s = NewSession(h.r, NewWriter(&h.out), v)
	return h
}

// send feeds one line and returns the reply text and the action.
func (h *harness) send(line string) (string, Action) {
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
	h.expect("PASS secret", "+OK maildrop ready")
	require.Equal(h.t, StateTransaction, h.s.State())
}

// TestSessionAllowedStates checks every command in every state under every
// profile: a command not allowed in the state never reaches the handler and
// gets -ERR (C0002, C0003, RFC1939-5-TRANSACTION).
func TestSessionAllowedStates(t *testing.T) {
	clause.Covers(t, "C0002", "C0003", "RFC1939-5-TRANSACTION", "V0012")
	lines := map[Cmd]string{
		CmdUSER: "USER alice", CmdPASS: "PASS secret", CmdAPOP: "APOP alice c4c9334bac560ecc979e58001b3e22fb",
		CmdAUTH: "AUTH PLAIN", CmdSTLS: "STLS", CmdCAPA: "CAPA", CmdUTF8: "UTF8", CmdLANG: "LANG",
		CmdQUIT: "QUIT", CmdSTAT: "STAT", CmdLIST: "LIST", CmdRETR: "RETR 1", CmdDELE: "DELE 1",
		CmdNOOP: "NOOP", CmdRSET: "RSET", CmdTOP: "TOP 1 1", CmdUIDL: "UIDL 1",
	}
	require.Len(t, lines, len(Commands), "a line for every command")
	for name, v := range profiles(t) {
		for _, info := range Commands {
			for _, st := range []State{StateAuthorization, StateTransaction} {
				t.Run(name+"/"+info.Cmd.String()+"/"+st.String(), func(t *testing.T) {
					h := newHarness(t, v)
					h.s.SetMode(ModeSecure)
					if st == StateTransaction {
						h.login()
					}
					before := len(h.r.calls)
					got, _ := h.send(lines[info.Cmd])
					reached := len(h.r.calls) > before
					enabled := info.EnabledBy == ""
					if !enabled {
						x, err := v.Get(info.EnabledBy)
						require.NoError(t, err)
						enabled = x == "true"
					}
					switch {
					case !enabled:
						assert.False(t, reached)
						assert.Equal(t, "-ERR "+ErrNotSupported.Text+"\r\n", got, "V0012: disabled commands are not supported")
					case info.In&st == 0:
						assert.False(t, reached, "must not reach the handler")
						want := ErrAlreadyAuth
						if st == StateAuthorization {
							want = ErrNeedAuth
						}
						assert.Equal(t, "-ERR "+want.Text+"\r\n", got)
					case info.Cmd == CmdPASS && st == StateAuthorization:
						assert.False(t, reached, "PASS without USER never reaches the handler")
						assert.Equal(t, "-ERR "+ErrNeedUser.Text+"\r\n", got)
					default:
						assert.True(t, reached, "allowed command must reach the handler: %q", got)
					}
				})
			}
		}
	}
}

// TestSessionLoginAndQuit walks RFC1939-4-AUTHORIZATION → TRANSACTION →
// RFC1939-6-UPDATE and checks that QUIT's handler runs in UPDATE.
func TestSessionLoginAndQuit(t *testing.T) {
	clause.Covers(t, "RFC1939-4-AUTHORIZATION", "RFC1939-6-UPDATE")
	h := newHarness(t, RFC1939())
	assert.Equal(t, StateAuthorization, h.s.State(), "RFC1939-4-AUTHORIZATION: sessions start in AUTHORIZATION")
	h.login()
	h.expect("STAT", "+OK 2 300\r\n")
	h.expect("DELE 1", "+OK\r\n")
	got, a := h.send("QUIT")
	assert.Equal(t, "+OK\r\n", got)
	assert.Equal(t, ActionClose, a)
	assert.Equal(t, StateUpdate, h.s.State())
	assert.Equal(t, "UPDATE", h.r.calls[len(h.r.calls)-1], "RFC1939-6-UPDATE: the handler removes messages in Update")
}

// TestSessionQuitInAuthorization: RFC1939-4-QUIT closes without UPDATE.
func TestSessionQuitInAuthorization(t *testing.T) {
	clause.Covers(t, "RFC1939-4-QUIT")
	h := newHarness(t, RFC1939())
	got, a := h.send("QUIT")
	assert.Equal(t, "+OK\r\n", got)
	assert.Equal(t, ActionClose, a)
	assert.Equal(t, StateAuthorization, h.s.State())
	assert.Equal(t, []string{"QUIT"}, h.r.calls, "Quit, not Update: nothing is removed")
}

// TestSessionQuitError: a failed UPDATE still closes (V0006: the server may
// leave marked messages, the client learns it from -ERR).
func TestSessionQuitError(t *testing.T) {
	clause.Covers(t, "V0006")
	h := newHarness(t, RFC1939())
	h.login()
	h.r.fail[CmdQUIT] = &Error{Code: CodeSysTemp, Text: "some messages were not removed"}
	got, a := h.send("QUIT")
	assert.Equal(t, "-ERR [SYS/TEMP] some messages were not removed\r\n", got)
	assert.Equal(t, ActionClose, a)
}

// TestSessionPassNeedsUser: RFC1939-7-PASS follows a successful USER only,
// immediately.
func TestSessionPassNeedsUser(t *testing.T) {
	clause.Covers(t, "RFC1939-7-PASS")
	h := newHarness(t, RFC1939())
	h.expect("PASS secret", "-ERR "+ErrNeedUser.Text)
	h.expect("USER alice", "+OK")
	h.expect("NOOP", "-ERR")
	h.expect("PASS secret", "-ERR "+ErrNeedUser.Text)
	h.expect("USER bob", "-ERR [AUTH]")
	h.expect("PASS secret", "-ERR "+ErrNeedUser.Text)
	h.expect("USER alice", "+OK")
	h.expect("PASS wrong", "-ERR [AUTH] invalid login")
	assert.Equal(t, StateAuthorization, h.s.State())
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
		h.s.SetMode(ModeSecure)
		got, _ := h.send("USER nobody")
		assert.Equal(t, tc.want, got)
		if tc.v.UserAlwaysOK {
			h.expect("PASS secret", "-ERR [AUTH] invalid login")
		}
	}
}

// TestSessionPlaintextRefused: V0010 — where plaintext is not permitted,
// USER and PASS get -ERR [AUTH] whatever the user, and the handler never
// sees the name.
func TestSessionPlaintextRefused(t *testing.T) {
	clause.Covers(t, "V0010")
	v := Exchange2010()
	require.Equal(t, PlaintextAuthSecure, v.PlaintextAuth)
	h := newHarness(t, v)
	for _, user := range []string{"alice", "nobody"} {
		got, _ := h.send("USER " + user)
		assert.Equal(t, "-ERR [AUTH] "+ErrPlaintextRefused.Text+"\r\n", got)
	}
	assert.Empty(t, h.r.calls)
	assert.False(t, h.s.PlaintextAllowed())
	h.s.SetMode(ModeSecure)
	assert.True(t, h.s.PlaintextAllowed())
	h.login()

	require.NoError(t, v.Set("PlaintextAuth", "never"))
	h = newHarness(t, v)
	h.s.SetMode(ModeTLS)
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
	h.s.SetMode(ModeTLS | ModeSecure)
	assert.Same(t, ErrPlaintextDisabled, h.s.PlaintextRefusal())
	got, _ := h.send("USER alice")
	assert.Equal(t, "-ERR [AUTH] plaintext authentication is disabled on this server\r\n", got)
	got, _ = h.send("PASS secret")
	assert.Equal(t, "-ERR "+ErrNeedUser.Text+"\r\n", got)
	h.r.fail[CmdAUTH] = ErrPlaintextRefused
	got, _ = h.send("AUTH PLAIN")
	assert.Equal(t, "-ERR [AUTH] "+ErrPlaintextDisabled.Text+"\r\n", got)

	require.NoError(t, v.Set("PlaintextAuth", "secure"))
	h = newHarness(t, v)
	assert.Same(t, ErrPlaintextRefused, h.s.PlaintextRefusal())
	got, _ = h.send("USER alice")
	assert.Equal(t, "-ERR [AUTH] "+ErrPlaintextRefused.Text+"\r\n", got)
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
		want := map[bool]string{false: "-ERR " + ErrNeedUser.Text, true: "+OK maildrop ready"}[sticky]
		h.expect("USER alice", "+OK")
		h.expect("CAPA", "+OK")
		h.expect("NOOP", "-ERR")
		h.expect("PASS secret", want)

		// A failed PASS needs a new USER, sticky or not (as Dovecot).
		h = newHarness(t, v)
		h.expect("USER alice", "+OK")
		h.expect("PASS wrong", "-ERR [AUTH]")
		h.expect("PASS secret", "-ERR "+ErrNeedUser.Text)
		h.expect("USER alice", "+OK")
		h.expect("CAPA", "+OK")
		h.expect("PASS secret", want)

		// A failed USER forgets the earlier name, sticky or not.
		h = newHarness(t, v)
		h.expect("USER alice", "+OK")
		h.expect("USER bob", "-ERR [AUTH]")
		h.expect("CAPA", "+OK")
		h.expect("PASS secret", "-ERR "+ErrNeedUser.Text)

		// STLS forgets it too (RFC 2595 §4).
		h = newHarness(t, v)
		h.expect("USER alice", "+OK")
		h.s.TLSStarted()
		h.expect("PASS secret", "-ERR "+ErrNeedUser.Text)
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
	h.expect("", "+OK")
	assert.Equal(t, StateTransaction, h.s.State())

	// Cancel: "*" gets -ERR and the handler is told.
	h = newHarness(t, RFC1939())
	h.r.saslSteps = 1
	h.expect("AUTH PLAIN", "+ ")
	got, _ := h.send("*")
	assert.Equal(t, "-ERR "+ErrAuthCancelled.Text+"\r\n", got)
	assert.False(t, h.s.InSASL())
	assert.Equal(t, StateAuthorization, h.s.State())

	// Bad base64 ends the exchange with -ERR.
	h = newHarness(t, RFC1939())
	h.r.saslSteps = 1
	h.expect("AUTH PLAIN", "+ ")
	h.expect("not base64!", "-ERR "+ErrBadBase64.Text)
	assert.False(t, h.s.InSASL())

	// A continuation line longer than MaxSASLOctets.
	h = newHarness(t, RFC1939())
	h.r.saslSteps = 1
	h.expect("AUTH PLAIN", "+ ")
	h.expect(strings.Repeat("A", RFC1939().MaxSASLOctets), "-ERR "+ErrSASLTooLong.Text)

	// MSPOP3-2.2.1: the bare AUTH listing.
	h = newHarness(t, Exchange2010())
	assert.Equal(t, "+OK SASL mechanisms follow\r\nPLAIN\r\n.\r\n", h.expect("AUTH", "+OK"))
	assert.Equal(t, StateAuthorization, h.s.State(), "listing the mechanisms is no login")
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
	assert.Equal(t, "-ERR "+ErrUnknownMechanism.Text+"\r\n", h.expect("AUTH GSSAPI", "-ERR"))
	assert.Empty(t, h.r.calls, "the handler is not asked for a mechanism it does not list")

	v := RFC1939()
	require.NoError(t, v.Set("PlaintextAuth", "never"))
	h = newHarness(t, v)
	h.r.mechs = []string{} // a server lists none where plaintext is refused
	assert.Equal(t, "-ERR [AUTH] "+ErrPlaintextDisabled.Text+"\r\n", h.expect("AUTH PLAIN", "-ERR"))
}

// TestSessionSTLS: RFC2595-4-STLS asks the connection to start TLS, and is
// refused inside TLS; TLSStarted forgets the USER given before.
func TestSessionSTLS(t *testing.T) {
	clause.Covers(t, "RFC2595-4-STLS")
	h := newHarness(t, RFC1939())
	h.expect("USER alice", "+OK")
	got, a := h.send("STLS")
	assert.Equal(t, "+OK\r\n", got)
	assert.Equal(t, ActionStartTLS, a)
	h.s.TLSStarted()
	assert.Equal(t, ModeTLS|ModeSecure, h.s.Mode())
	h.expect("PASS secret", "-ERR "+ErrNeedUser.Text)
	got, a = h.send("STLS")
	assert.Equal(t, "-ERR "+ErrTLSActive.Text+"\r\n", got)
	assert.Equal(t, ActionContinue, a)
}

// TestSessionUTF8: RFC6856-2-UTF8 switches the mode on.
func TestSessionUTF8(t *testing.T) {
	clause.Covers(t, "RFC6856-2-UTF8")
	h := newHarness(t, RFC1939())
	h.expect("UTF8", "+OK")
	assert.Equal(t, ModeUTF8, h.s.Mode()&ModeUTF8)
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
	assert.Equal(t, "-ERR "+ErrTooManyErrors.Text+"\r\n", got)
	assert.Equal(t, ActionClose, a)
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
		require.Equal(t, ActionContinue, a)
	}
	h.expect("BOGUS", "-ERR")
	h.expect("BOGUS", "-ERR")
	_, a := h.send("BOGUS")
	assert.Equal(t, ActionClose, a, "protocol errors still count")
}

// TestSessionFailureAfterReplyBegan: RFC1939-3-MULTILINE — a handler that
// fails after its multi-line reply has begun must not have -ERR written
// into the body (the client would read it as message text and wait for a
// terminator that never comes): the session closes the connection instead.
func TestSessionFailureAfterReplyBegan(t *testing.T) {
	clause.Covers(t, "RFC1939-3-MULTILINE")
	h := newHarness(t, RFC1939())
	h.login()
	h.r.begin = map[Cmd]bool{CmdTOP: true}
	h.r.fail[CmdTOP] = &Error{Code: CodeSysTemp, Text: "message cannot be read now"}
	got, a := h.send("TOP 1 0")
	assert.Equal(t, "+OK top of message follows\r\nSubject: x\r\n", got, "nothing after the partial body")
	assert.Equal(t, ActionClose, a)
}

// TestSessionTimers: V0002 — the unauthenticated timer before login, the
// authenticated one after; RFC1939-3-TIMER — at least 10 minutes in rfc1939.
func TestSessionTimers(t *testing.T) {
	clause.Covers(t, "RFC1939-3-TIMER", "V0002")
	h := newHarness(t, Exchange2010())
	h.s.SetMode(ModeSecure)
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
	assert.Equal(t, "-ERR "+ErrAutologout.Text+"\r\n", h.out.String())
	h = newHarness(t, RFC1939())
	h.s.Autologout()
	assert.Empty(t, h.out.String(), "RFC1939-3-TIMER: no response on autologout")
}

// TestSessionInformativeErrors: V0001 — informative text after -ERR, or
// the bare status where the variation is off.
func TestSessionInformativeErrors(t *testing.T) {
	clause.Covers(t, "V0001")
	h := newHarness(t, Exchange2010())
	assert.Equal(t, "-ERR "+ErrUnknownCommand.Text+"\r\n", h.expect("FOO", "-ERR"))
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
	h.login()
	h.r.fail[CmdDELE] = errors.New("open /var/mail/secret: permission denied")
	got, _ := h.send("DELE 1")
	assert.Equal(t, "-ERR [SYS/TEMP] internal server error\r\n", got)
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
	assert.Contains(t, want.String(), "+OK message follows\r\nSubject: x\r\n\r\n..hidden\r\nbody\r\n.\r\n", "RFC1939-3-MULTILINE")
}

// TestSessionCapaInfo: RFC2449-5-CAPA — what CAPA announces follows the
// state (USER, SASL and STLS before login only), the connection (STLS
// where TLS can start; no login offered before TLS where it is required)
// and what the handler implements (no UTF8 or LANG line for a handler
// without their optional interfaces, whatever the profile says).
func TestSessionCapaInfo(t *testing.T) {
	clause.Covers(t, "RFC2449-5-CAPA", "RFC2595-4-STLS")
	h := newHarness(t, RFC1939())
	assert.Equal(t, CapaInfo{Plaintext: true, SASL: []string{"PLAIN"}}, h.s.CapaInfo())
	h.s.SetTLS(true, false)
	assert.Equal(t, CapaInfo{Plaintext: true, SASL: []string{"PLAIN"}, STLS: true}, h.s.CapaInfo())
	h.s.SetTLS(true, true)
	assert.Equal(t, CapaInfo{STLS: true}, h.s.CapaInfo(), "no login offered before TLS")
	h.s.TLSStarted()
	assert.Equal(t, CapaInfo{Plaintext: true, SASL: []string{"PLAIN"}}, h.s.CapaInfo())
	h.login()
	assert.Equal(t, CapaInfo{}, h.s.CapaInfo(), "after login: none of them")

	var out bytes.Buffer
	s := NewSession(&dropSession{drop: &memDrop{broken: -1}}, NewWriter(&out), RFC1939())
	info := s.CapaInfo()
	WriteCapa(NewWriter(&out), &s.V, &info)
	assert.NotContains(t, out.String(), "UTF8")
	assert.NotContains(t, out.String(), "LANG")
	out.Reset()
	info = h.s.CapaInfo()
	WriteCapa(NewWriter(&out), &h.s.V, &info)
	assert.Contains(t, out.String(), "UTF8", "the recorder serves UTF8")
}
