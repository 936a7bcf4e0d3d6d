package server_test

import (
	"encoding/base64"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/asn1tools"
	krbclient "github.com/jcmturner/gokrb5/v8/client"
	krbconfig "github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/gssapi"
	"github.com/jcmturner/gokrb5/v8/iana/chksumtype"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pop3kit/pop3kit/internal/clause"
	"github.com/pop3kit/pop3kit/internal/pop3test"
	"github.com/pop3kit/pop3kit/internal/saslhook"
	"github.com/pop3kit/pop3kit/internal/testkdc"
	"github.com/pop3kit/pop3kit/server"
	"github.com/pop3kit/pop3kit/server/saslmech"
)

const testRealm = "TEST.POP3KIT"

// servicePassword derives the forged realm's service keys: the tests
// that need no KDC play its part, issuing tickets under these keys.
func servicePassword(spn string) string { return "key of " + spn }

// forgedKeytab writes a keytab holding the AES-256 keys of the service
// principals (name@REALM, or name in testRealm), as ktadd would.
func forgedKeytab(t *testing.T, principals ...string) (string, *keytab.Keytab) {
	t.Helper()
	kt := keytab.New()
	for _, p := range principals {
		name, realm, ok := strings.Cut(p, "@")
		if !ok {
			realm = testRealm
		}
		require.NoError(t, kt.AddEntry(name, realm, servicePassword(name+"@"+realm), time.Now(), 2, etypeID.AES256_CTS_HMAC_SHA1_96))
	}
	b, err := kt.Marshal()
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "pop.keytab")
	require.NoError(t, os.WriteFile(path, b, 0o600))
	return path, kt
}

// gssTicket is a service ticket and its session key, as a client holds
// them after a TGS exchange.
type gssTicket struct {
	tkt    messages.Ticket
	key    types.EncryptionKey
	cname  types.PrincipalName
	crealm string
}

// forge issues a ticket for client (name[@REALM]) to service spn
// (pop/host[@REALM]) under the keytab's key, valid from start to end.
func forge(t *testing.T, kt *keytab.Keytab, client, spn string, start, end time.Time) gssTicket {
	t.Helper()
	cn, cr, ok := strings.Cut(client, "@")
	if !ok {
		cr = testRealm
	}
	sn, sr, ok := strings.Cut(spn, "@")
	if !ok {
		sr = testRealm
	}
	cname := types.NewPrincipalName(nametype.KRB_NT_PRINCIPAL, cn)
	tkt, key, err := messages.NewTicket(cname, cr, types.NewPrincipalName(nametype.KRB_NT_SRV_HST, sn), sr,
		types.NewKrbFlags(), kt, etypeID.AES256_CTS_HMAC_SHA1_96, int(kt.Entries[0].KVNO), start, start, end, end)
	require.NoError(t, err)
	return gssTicket{tkt: tkt, key: key, cname: cname, crealm: cr}
}

// gssInit is the initiator's side of one context (RFC 4121 §4.1).
type gssInit struct {
	mutual bool          // GSS_C_MUTUAL_FLAG and AP-options mutual-required
	subkey bool          // an initiator subkey, as MIT's library always sends
	skew   time.Duration // added to the authenticator's timestamp
	auth   types.Authenticator
	t      gssTicket
}

// token returns the InitialContextToken carrying a new AP-REQ.
func (g *gssInit) token(t *testing.T, tk gssTicket) []byte {
	t.Helper()
	g.t = tk
	auth, err := types.NewAuthenticator(tk.crealm, tk.cname)
	require.NoError(t, err)
	auth.CTime = auth.CTime.Add(g.skew)
	ck := make([]byte, 24)
	binary.LittleEndian.PutUint32(ck, 16)
	if g.mutual {
		binary.LittleEndian.PutUint32(ck[20:], gssapi.ContextFlagMutual)
	}
	auth.Cksum = types.Checksum{CksumType: chksumtype.GSSAPI, Checksum: ck}
	if g.subkey {
		require.NoError(t, auth.GenerateSeqNumberAndSubKey(etypeID.AES256_CTS_HMAC_SHA1_96, 32))
	}
	g.auth = auth
	req, err := messages.NewAPReq(tk.tkt, tk.key, auth)
	require.NoError(t, err)
	if g.mutual {
		types.SetFlag(&req.APOptions, flags.APOptionMutualRequired)
	}
	b, err := req.Marshal()
	require.NoError(t, err)
	oid, _ := asn1.Marshal(gssapi.OIDKRB5.OID())
	return asn1tools.AddASNAppTag(append(append(oid, 1, 0), b...), 0)
}

// key is the per-message tokens' key: the subkey, if any.
func (g *gssInit) key() types.EncryptionKey {
	if g.auth.SubKey.KeyType != 0 {
		return g.auth.SubKey
	}
	return g.t.key
}

// wrapped returns the initiator's Wrap token of payload.
func (g *gssInit) wrapped(t *testing.T, payload []byte) []byte {
	t.Helper()
	w, err := gssapi.NewInitiatorWrapToken(payload, g.key())
	require.NoError(t, err)
	b, err := w.Marshal()
	require.NoError(t, err)
	return b
}

// refusals are the reasons the server gave for refusing GSSAPI
// exchanges, in order.
type refusals struct {
	mu   sync.Mutex
	whys []string
}

// hearRefusals records the refusals of the servers started after it,
// until the test ends.
func hearRefusals(t *testing.T) *refusals {
	r := &refusals{}
	t.Cleanup(saslhook.OnGSSAPIRefusal(func(why string) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.whys = append(r.whys, why)
	}))
	return r
}

// last is the latest reason, "" if none.
func (r *refusals) last() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.whys) == 0 {
		return ""
	}
	return r.whys[len(r.whys)-1]
}

// gdial connects to e for the (sub)test t, which its failures fail and
// whose end closes it.
func gdial(t *testing.T, e *env) *pop3test.Conn {
	t.Helper()
	c := e.dial()
	c.T = t
	t.Cleanup(func() { c.C.Close() })
	return c
}

func gb64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// gssLogin runs AUTH GSSAPI with token on c as an RFC 4752 client does
// (checking the AP-REP when mutual, and the server's wrapped offer) and
// answers the offer with answer's token (nil: "no layer", no authzid).
// It returns the last reply.
func gssLogin(t *testing.T, c *pop3test.Conn, g *gssInit, token []byte, answer func(offer []byte) []byte) string {
	t.Helper()
	// A token is longer than an AUTH line may be (RFC 5034 §4): it goes
	// after an empty challenge, as curl sends it.
	r := c.Cmd("AUTH GSSAPI")
	require.Equal(t, "+ ", r)
	r = c.Cmd(gb64(token))
	if !strings.HasPrefix(r, "+ ") {
		return r
	}
	chal, err := base64.StdEncoding.DecodeString(r[2:])
	require.NoError(t, err)
	if g.mutual {
		id, body, err := saslmech.ParseGSSToken(chal)
		require.NoError(t, err, "the AP-REP token")
		require.Equal(t, saslmech.GSSTokAPRep, id)
		var rep messages.APRep
		require.NoError(t, rep.Unmarshal(body))
		plain, err := crypto.DecryptEncPart(rep.EncPart, g.t.key, keyusage.AP_REP_ENCPART)
		require.NoError(t, err, "the AP-REP decrypts with the session key")
		var part messages.EncAPRepPart
		require.NoError(t, part.Unmarshal(plain))
		assert.True(t, part.CTime.Equal(g.auth.CTime.Truncate(time.Second)), "ctime %v, sent %v", part.CTime, g.auth.CTime)
		assert.Equal(t, g.auth.Cusec, part.Cusec)
		assert.NotZero(t, part.SequenceNumber)
		r = c.Cmd("")
		require.True(t, strings.HasPrefix(r, "+ "), r)
		chal, err = base64.StdEncoding.DecodeString(r[2:])
		require.NoError(t, err)
	}
	var w gssapi.WrapToken
	require.NoError(t, w.Unmarshal(chal, true), "the server's offer is an acceptor's Wrap token")
	ok, err := w.Verify(g.key(), keyusage.GSSAPI_ACCEPTOR_SEAL)
	require.True(t, ok, "the offer's checksum: %v", err)
	require.Equal(t, []byte{1, 0, 0, 0}, w.Payload, "no security layer, no buffer")
	var out []byte
	if answer != nil {
		out = answer(w.Payload)
	} else {
		out = g.wrapped(t, []byte{1, 0, 0, 0})
	}
	r = c.Cmd(gb64(out))
	if strings.HasPrefix(r, "+OK") {
		// Logged in: QUIT, so that the maildrop's lock is free for the
		// next login (a dropped connection frees it later).
		require.True(t, strings.HasPrefix(c.Cmd("QUIT"), "+OK"))
	}
	return r
}

// withKeytab configures GSSAPI with keytab and service principal spn ("":
// the default, pop/<hostname>).
func withKeytab(keytab, spn string) func(*server.Config) {
	return func(c *server.Config) { c.GSSAPIKeytab, c.GSSAPIServicePrincipal = keytab, spn }
}

// TestGSSAPIForged runs the exchange against tickets the test issues
// itself under the keytab's keys: every check of the acceptor, with no
// KDC. TestGSSAPIRealm does the same with MIT Kerberos and curl.
func TestGSSAPIForged(t *testing.T) {
	ktPath, kt := forgedKeytab(t, "pop/pop3kit.test", "pop/other", "pop/pop3kit.test@OTHER.REALM")
	heard := hearRefusals(t)
	e := newEnv(t, "rfc1939", withKeytab(ktPath, "pop/pop3kit.test@"+testRealm))
	e.deliver("alice", msg1, "")
	now := time.Now().UTC()
	good := func(client string) gssTicket {
		return forge(t, kt, client, "pop/pop3kit.test", now.Add(-time.Minute), now.Add(time.Hour))
	}

	c := gdial(t, e)
	c.Cmd("CAPA")
	assert.Contains(t, c.Multi(), "SASL GSSAPI PLAIN LOGIN", "offered first with a keytab")

	t.Run("mutual, no subkey", func(t *testing.T) {
		g := &gssInit{mutual: true}
		c := gdial(t, e)
		r := gssLogin(t, c, g, g.token(t, good("alice")), nil)
		require.True(t, strings.HasPrefix(r, "+OK"), r)
		t.Log(r)
	})
	t.Run("subkey, authzid the user", func(t *testing.T) {
		g := &gssInit{subkey: true}
		c := gdial(t, e)
		r := gssLogin(t, c, g, g.token(t, good("alice")), func([]byte) []byte { return g.wrapped(t, []byte("\x01\x00\x00\x00alice")) })
		require.True(t, strings.HasPrefix(r, "+OK"), r)
	})
	t.Run("answer rotated (RRC)", func(t *testing.T) {
		// RFC 4121 §4.2.5: a sender may rotate what follows the header
		// right by RRC octets; the checksum is computed with RRC 0.
		g := &gssInit{subkey: true}
		r := gssLogin(t, gdial(t, e), g, g.token(t, good("alice")), func([]byte) []byte {
			b := g.wrapped(t, []byte{1, 0, 0, 0})
			data, n := b[16:], 5
			rotated := append(append([]byte(nil), data[len(data)-n:]...), data[:len(data)-n]...)
			binary.BigEndian.PutUint16(b[6:8], uint16(n+len(data))) // RRC counts modulo the length
			return append(b[:16:16], rotated...)
		})
		require.True(t, strings.HasPrefix(r, "+OK"), r)
	})
	t.Run("initial response", func(t *testing.T) {
		// A ticket, some hundreds of octets, fits the AUTH line as its
		// initial response (MaxAuthLineOctets, RFC 5034 §4): the server
		// answers with its security-layer challenge.
		g := &gssInit{subkey: true}
		c := gdial(t, e)
		r := c.Cmd("AUTH GSSAPI " + gb64(g.token(t, good("alice"))))
		assert.True(t, strings.HasPrefix(r, "+ "), r)
		// Past MaxAuthLineOctets the line is still refused.
		assert.Equal(t, "-ERR command line too long", gdial(t, e).Cmd("AUTH GSSAPI "+strings.Repeat("A", 12300)))
	})
	t.Run("replayed authenticator", func(t *testing.T) {
		g := &gssInit{subkey: true}
		tok := g.token(t, good("alice"))
		r := gssLogin(t, gdial(t, e), g, tok, nil)
		require.True(t, strings.HasPrefix(r, "+OK"), r)
		r = gssLogin(t, gdial(t, e), g, tok, nil)
		assert.True(t, strings.HasPrefix(r, "-ERR [AUTH]"), "the same token again: %s", r)
		assert.Equal(t, "a replayed authenticator", heard.last())
	})

	refused := []struct {
		name   string
		why    string // in the log's reason for the refusal
		g      gssInit
		ticket func() gssTicket
		token  func([]byte) []byte               // alters the token; nil: as made
		answer func(g *gssInit, o []byte) []byte // answers the offer; nil: no layer
	}{
		{name: "unknown user", why: "no such user", ticket: func() gssTicket { return good("zed") }},
		{name: "principal with an instance", why: "is not user@TEST.POP3KIT", ticket: func() gssTicket { return good("alice/admin") }},
		{name: "another realm's user", why: "is not in realm TEST.POP3KIT", ticket: func() gssTicket { return good("alice@OTHER.REALM") }},
		{name: "another service's ticket", why: "the ticket is for pop/other@TEST.POP3KIT", ticket: func() gssTicket {
			return forge(t, kt, "alice", "pop/other", now.Add(-time.Minute), now.Add(time.Hour))
		}},
		{name: "the service in another realm", why: "the ticket is for pop/pop3kit.test@OTHER.REALM", ticket: func() gssTicket {
			return forge(t, kt, "alice", "pop/pop3kit.test@OTHER.REALM", now.Add(-time.Minute), now.Add(time.Hour))
		}},
		{name: "expired ticket", why: "KRB_AP_ERR_TKT_EXPIRED", ticket: func() gssTicket {
			return forge(t, kt, "alice", "pop/pop3kit.test", now.Add(-3*time.Hour), now.Add(-2*time.Hour))
		}},
		{name: "ticket not yet valid", why: "KRB_AP_ERR_TKT_NYV", ticket: func() gssTicket {
			return forge(t, kt, "alice", "pop/pop3kit.test", now.Add(time.Hour), now.Add(2*time.Hour))
		}},
		{name: "authenticator outside the clock skew", why: "KRB_AP_ERR_SKEW", g: gssInit{skew: -10 * time.Minute}, ticket: func() gssTicket { return good("alice") }},
		{name: "ticket under a key the keytab lacks", why: "integrity verification failed", ticket: func() gssTicket {
			_, other := forgedKeytab(t, "pop/pop3kit.test@ELSEWHERE")
			tk := forge(t, other, "alice", "pop/pop3kit.test@ELSEWHERE", now.Add(-time.Minute), now.Add(time.Hour))
			tk.tkt.Realm = testRealm
			return tk
		}},
		{name: "corrupted ticket", why: "AP-REQ", ticket: func() gssTicket { return good("alice") }, token: func(b []byte) []byte {
			b = append([]byte(nil), b...)
			b[len(b)/3] ^= 0x40
			return b
		}},
		{name: "SPNEGO", why: "an SPNEGO token", ticket: func() gssTicket { return good("alice") }, token: func(b []byte) []byte {
			return asn1tools.AddASNAppTag(append([]byte{0x06, 0x06, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x02}, 0xa0, 0), 0)
		}},
		{name: "trailing octets", why: "not an RFC 2743", ticket: func() gssTicket { return good("alice") }, token: func(b []byte) []byte { return append(b, 0) }},
		{name: "proxy authorization", why: "proxy authorization is not offered", ticket: func() gssTicket { return good("alice") },
			answer: func(g *gssInit, o []byte) []byte { return g.wrapped(t, []byte("\x01\x00\x00\x00bob")) }},
		{name: "confidentiality layer chosen", why: "security layers 0x4", ticket: func() gssTicket { return good("alice") },
			answer: func(g *gssInit, o []byte) []byte { return g.wrapped(t, []byte{4, 0, 0x10, 0}) }},
		{name: "short answer", why: "shorter than 4 octets", ticket: func() gssTicket { return good("alice") },
			answer: func(g *gssInit, o []byte) []byte { return g.wrapped(t, []byte{1}) }},
		{name: "answer with a bad checksum", why: "checksum does not verify", ticket: func() gssTicket { return good("alice") },
			answer: func(g *gssInit, o []byte) []byte {
				b := g.wrapped(t, []byte{1, 0, 0, 0})
				b[len(b)-1] ^= 1
				return b
			}},
		{name: "answer signed with the session key, not the subkey", why: "checksum does not verify", g: gssInit{subkey: true}, ticket: func() gssTicket { return good("alice") },
			answer: func(g *gssInit, o []byte) []byte {
				w, _ := gssapi.NewInitiatorWrapToken([]byte{1, 0, 0, 0}, g.t.key)
				b, _ := w.Marshal()
				return b
			}},
		{name: "the server's offer echoed", why: "flags are not an initiator's", ticket: func() gssTicket { return good("alice") },
			answer: func(g *gssInit, o []byte) []byte {
				w := gssapi.WrapToken{Flags: 1, EC: 12, Payload: o}
				_ = w.SetCheckSum(g.key(), keyusage.GSSAPI_ACCEPTOR_SEAL)
				b, _ := w.Marshal()
				return b
			}},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			g := tc.g
			tok := g.token(t, tc.ticket())
			if tc.token != nil {
				tok = tc.token(tok)
			}
			var answer func([]byte) []byte
			if tc.answer != nil {
				answer = func(o []byte) []byte { return tc.answer(&g, o) }
			}
			r := gssLogin(t, gdial(t, e), &g, tok, answer)
			assert.True(t, strings.HasPrefix(r, "-ERR [AUTH]"), "%s", r)
			assert.Contains(t, heard.last(), tc.why)
		})
	}
}

// TestGSSAPIConfig: GSSAPI is offered only with a keytab holding the
// service principal's key, and the keytab is read again when it changes.
func TestGSSAPIConfig(t *testing.T) {
	ktPath, _ := forgedKeytab(t, "pop/pop3kit.test", "pop/twice@A.REALM", "pop/twice@B.REALM")
	base := func() server.Config {
		c := server.DefaultConfig()
		c.Listen, c.MailRoot, c.Passwd, c.Hostname = []string{"127.0.0.1:0"}, t.TempDir(), "/dev/null", "pop3kit.test"
		return c
	}
	for _, tc := range []struct {
		name string
		set  func(*server.Config)
		err  string
	}{
		{name: "default principal from the hostname", set: withKeytab(ktPath, "")},
		{name: "principal with its realm", set: withKeytab(ktPath, "pop/twice@B.REALM")},
		{name: "principal in two realms", set: withKeytab(ktPath, "pop/twice"), err: "in realms A.REALM, B.REALM"},
		{name: "principal not in the keytab", set: withKeytab(ktPath, "imap/pop3kit.test"), err: "holds no key for imap/pop3kit.test"},
		{name: "no keytab file", set: withKeytab(filepath.Join(t.TempDir(), "none"), ""), err: "no such file"},
		{name: "principal without keytab", set: withKeytab("", "pop/x"), err: "need gssapi_keytab"},
		{name: "listed without keytab", set: func(c *server.Config) { c.SASLMechanisms = []string{"GSSAPI"} }, err: "needs --gssapi-keytab"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.set(&c)
			err := c.Check()
			if tc.err == "" {
				require.NoError(t, err)
				assert.Contains(t, c.OfferedMechanisms(false, false), "GSSAPI")
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.err)
		})
	}
	c := base()
	require.NoError(t, c.Check())
	assert.NotContains(t, c.OfferedMechanisms(true, true), "GSSAPI", "not offered without a keytab (RFC 4752 §3.2)")

	t.Run("keytab rotated", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "pop.keytab")
		old, oldKT := forgedKeytab(t, "pop/pop3kit.test")
		b, _ := os.ReadFile(old)
		require.NoError(t, os.WriteFile(path, b, 0o600))
		e := newEnv(t, "rfc1939", withKeytab(path, ""))
		now := time.Now().UTC()
		// The key changes (ktadd after cpw): a ticket under the new key
		// logs in without a restart; one under the old key no longer.
		newKT := keytab.New()
		require.NoError(t, newKT.AddEntry("pop/pop3kit.test", testRealm, "rotated", time.Now(), 3, etypeID.AES256_CTS_HMAC_SHA1_96))
		nb, _ := newKT.Marshal()
		require.NoError(t, os.WriteFile(path+".new", nb, 0o600))
		require.NoError(t, os.Rename(path+".new", path))
		g := &gssInit{subkey: true}
		r := gssLogin(t, gdial(t, e), g, g.token(t, forge(t, newKT, "alice", "pop/pop3kit.test", now, now.Add(time.Hour))), nil)
		assert.True(t, strings.HasPrefix(r, "+OK"), "new key: %s", r)
		g = &gssInit{subkey: true}
		tk := forge(t, oldKT, "alice", "pop/pop3kit.test", now, now.Add(time.Hour))
		tk.tkt.EncPart.KVNO = 3
		r = gssLogin(t, gdial(t, e), g, g.token(t, tk), nil)
		assert.True(t, strings.HasPrefix(r, "-ERR [AUTH]"), "old key: %s", r)
	})
}

// TestGSSAPIRealm logs in through a real MIT Kerberos realm: curl with
// the tickets kinit got (MIT's GSS-API library as the initiator) logs in
// and fetches a message; a Go initiator with tickets from the same KDC
// is refused for a replayed authenticator, another service's ticket, an
// expired ticket and a principal pop3d has no user for.
func TestGSSAPIRealm(t *testing.T) {
	clause.Covers(t, "E0002", "RFC4752-3-GSSAPI")
	curl := need(t, "curl")
	if out, _ := exec.Command(curl, "-V").Output(); !strings.Contains(string(out), "GSS-API") {
		missing(t, "this curl has no GSS-API support:\n%s", out)
	}
	k := testkdc.Start(t, testRealm)
	k.AddPrincipal("pop/127.0.0.1", "")
	k.AddPrincipal("pop/other", "")
	k.AddPrincipal("alice", "alice-pw")
	k.AddPrincipal("zed", "zed-pw")
	ktPath := filepath.Join(k.Dir, "pop.keytab")
	k.Keytab(ktPath, "pop/127.0.0.1", "pop/other")
	heard := hearRefusals(t)
	e := newEnv(t, "exchange2010", withKeytab(ktPath, "pop/127.0.0.1"))
	e.deliver("alice", msg1, "")
	_, port, _ := strings.Cut(e.addr, ":")

	runCurl := func(ccache string) (string, error) {
		cmd := exec.Command(curl, "-sS", "--max-time", "20", "--login-options", "AUTH=GSSAPI", "-u", ":",
			"pop3://127.0.0.1:"+port+"/1")
		cmd.Env = k.Env("KRB5CCNAME=FILE:" + ccache)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	t.Run("curl", func(t *testing.T) {
		cc := filepath.Join(k.Dir, "alice.cc")
		k.Kinit(cc, "alice", "alice-pw")
		out, err := runCurl(cc)
		require.NoError(t, err, "%s", out)
		assert.Equal(t, strings.ReplaceAll(msg1, "\n", "\r\n"), out)
		klist := k.Run("klist", "-c", "FILE:"+cc)
		assert.Contains(t, klist, "pop/127.0.0.1@"+testRealm, "curl asked the KDC for pop/127.0.0.1")
	})
	t.Run("curl, unknown user", func(t *testing.T) {
		cc := filepath.Join(k.Dir, "zed.cc")
		k.Kinit(cc, "zed", "zed-pw")
		out, err := runCurl(cc)
		require.Error(t, err, "zed has no maildrop: %s", out)
		assert.Contains(t, out, "Login denied")
		assert.Equal(t, "no such user", heard.last())
	})

	cfg, err := krbconfig.Load(k.Config)
	require.NoError(t, err)
	ticket := func(t *testing.T, cfg *krbconfig.Config, user, password, spn string) gssTicket {
		cl := krbclient.NewWithPassword(user, testRealm, password, cfg, krbclient.DisablePAFXFAST(true))
		require.NoError(t, cl.Login())
		tkt, key, err := cl.GetServiceTicket(spn)
		require.NoError(t, err)
		return gssTicket{tkt: tkt, key: key, cname: types.NewPrincipalName(nametype.KRB_NT_PRINCIPAL, user), crealm: testRealm}
	}
	t.Run("Go initiator, mutual, and its replay", func(t *testing.T) {
		g := &gssInit{mutual: true, subkey: true}
		tok := g.token(t, ticket(t, cfg, "alice", "alice-pw", "pop/127.0.0.1"))
		r := gssLogin(t, gdial(t, e), g, tok, nil)
		require.True(t, strings.HasPrefix(r, "+OK"), r)
		r = gssLogin(t, gdial(t, e), g, tok, nil)
		assert.True(t, strings.HasPrefix(r, "-ERR [AUTH]"), "replayed: %s", r)
		assert.Equal(t, "a replayed authenticator", heard.last())
	})
	t.Run("another service's ticket", func(t *testing.T) {
		g := &gssInit{subkey: true}
		r := gssLogin(t, gdial(t, e), g, g.token(t, ticket(t, cfg, "alice", "alice-pw", "pop/other")), nil)
		assert.True(t, strings.HasPrefix(r, "-ERR [AUTH]"), "pop/other's key is in the keytab, but the ticket is not for pop3d: %s", r)
		assert.Contains(t, heard.last(), "the ticket is for pop/other@"+testRealm)
	})
	t.Run("unknown user", func(t *testing.T) {
		g := &gssInit{subkey: true}
		r := gssLogin(t, gdial(t, e), g, g.token(t, ticket(t, cfg, "zed", "zed-pw", "pop/127.0.0.1")), nil)
		assert.True(t, strings.HasPrefix(r, "-ERR [AUTH]"), r)
		assert.Equal(t, "no such user", heard.last())
	})
	t.Run("expired ticket", func(t *testing.T) {
		t.Cleanup(saslhook.SetGSSAPIMaxSkew(time.Second))
		short := newEnv(t, "rfc1939", withKeytab(ktPath, "pop/127.0.0.1"))
		c2, err := krbconfig.Load(k.Config)
		require.NoError(t, err)
		c2.LibDefaults.TicketLifetime = 5 * time.Second
		tk := ticket(t, c2, "alice", "alice-pw", "pop/127.0.0.1")
		// The test holds the service's keys: read the end time the KDC
		// put in the ticket.
		kt, err := keytab.Load(ktPath)
		require.NoError(t, err)
		peek := tk.tkt
		require.NoError(t, peek.DecryptEncPart(kt, nil))
		end := peek.DecryptedEncPart.EndTime
		require.Less(t, time.Until(end), time.Minute, "the KDC issued a short ticket")
		g := &gssInit{subkey: true}
		r := gssLogin(t, gdial(t, short), g, g.token(t, tk), nil)
		require.True(t, strings.HasPrefix(r, "+OK"), "while valid: %s", r)
		time.Sleep(time.Until(end.Add(time.Second + 500*time.Millisecond))) // past the end time and the skew
		g = &gssInit{subkey: true}
		r = gssLogin(t, gdial(t, short), g, g.token(t, tk), nil)
		assert.True(t, strings.HasPrefix(r, "-ERR [AUTH]"), "expired: %s", r)
		assert.Contains(t, heard.last(), "KRB_AP_ERR_TKT_EXPIRED")
	})
}
