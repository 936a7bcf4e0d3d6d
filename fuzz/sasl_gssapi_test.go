package pop3fuzz

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/asn1tools"
	"github.com/jcmturner/gokrb5/v8/gssapi"
	"github.com/jcmturner/gokrb5/v8/iana/chksumtype"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/pop3kit/pop3kit/internal/fuzzbound"
	"github.com/pop3kit/pop3kit/server"
	"github.com/pop3kit/pop3kit/server/saslmech"
)

// GSSAPI's decoders, fuzzed where they meet the client: a pop3d whose
// keytab holds pop/fuzz.test's key, so that the fuzz target can play the
// KDC and issue valid tickets to splice into its input. The oracle is
// the login's outcome against a reference that knows which tokens were
// valid: +OK exactly for a fresh valid ticket of user f followed by a
// correctly wrapped "no layer" answer naming f or no one, never a panic,
// every status line well-formed.

const gssRealm = "FUZZ.TEST"

var (
	gssOnce sync.Once
	gssSrv  *server.Server
	gssKT   *keytab.Keytab
)

// gssServer returns the process's GSSAPI pop3d: user f (PLAIN "pw"), a
// keytab with pop/fuzz.test and pop/other in FUZZ.TEST, GSSAPI the only
// mechanism.
func gssServer(t testing.TB) *server.Server {
	gssOnce.Do(func() {
		dir, err := os.MkdirTemp("", "pop3kit-fuzz-gssapi")
		if err != nil {
			panic(err)
		}
		root := filepath.Join(dir, "mail")
		_ = os.MkdirAll(root, 0o700)
		pw := filepath.Join(dir, "passwd")
		_ = os.WriteFile(pw, []byte("f:{PLAIN}pw\n"), 0o600)
		gssKT = keytab.New()
		for _, p := range []string{"pop/fuzz.test", "pop/other"} {
			if err := gssKT.AddEntry(p, gssRealm, "key of "+p, time.Now(), 1, etypeID.AES256_CTS_HMAC_SHA1_96); err != nil {
				panic(err)
			}
		}
		b, _ := gssKT.Marshal()
		kt := filepath.Join(dir, "pop.keytab")
		_ = os.WriteFile(kt, b, 0o600)
		cfg := server.DefaultConfig()
		cfg.Listen = []string{"127.0.0.1:0"} // never opened: sessions come through ServeConn
		cfg.MailRoot, cfg.Passwd, cfg.FailDelay, cfg.Hostname = root, pw, 0, "fuzz.test"
		cfg.GSSAPIKeytab = kt
		cfg.SASLMechanisms = []string{"GSSAPI"}
		cfg.MaxAuthFailures = 100
		if gssSrv, err = server.New(cfg, nil); err != nil {
			panic(err)
		}
	})
	return gssSrv
}

// gssCtx is a context the target initiated: a forged ticket, and the
// key of its per-message tokens.
type gssCtx struct {
	token  []byte
	key    types.EncryptionKey
	mutual bool
}

// forgeGSS issues a ticket for client to service and returns a fresh
// InitialContextToken for it (a new authenticator: never a replay).
func forgeGSS(t testing.TB, client, service string, mutual bool) gssCtx {
	cname := types.NewPrincipalName(nametype.KRB_NT_PRINCIPAL, client)
	now := time.Now().UTC()
	tkt, key, err := messages.NewTicket(cname, gssRealm, types.NewPrincipalName(nametype.KRB_NT_SRV_HST, service), gssRealm,
		types.NewKrbFlags(), gssKT, etypeID.AES256_CTS_HMAC_SHA1_96, 1, now, now, now.Add(time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	auth, _ := types.NewAuthenticator(gssRealm, cname)
	ck := make([]byte, 24)
	binary.LittleEndian.PutUint32(ck, 16)
	if mutual {
		binary.LittleEndian.PutUint32(ck[20:], gssapi.ContextFlagMutual)
	}
	auth.Cksum = types.Checksum{CksumType: chksumtype.GSSAPI, Checksum: ck}
	_ = auth.GenerateSeqNumberAndSubKey(etypeID.AES256_CTS_HMAC_SHA1_96, 32)
	req, err := messages.NewAPReq(tkt, key, auth)
	if err != nil {
		t.Fatal(err)
	}
	if mutual {
		types.SetFlag(&req.APOptions, flags.APOptionMutualRequired)
	}
	b, _ := req.Marshal()
	oid, _ := asn1.Marshal(gssapi.OIDKRB5.OID())
	return gssCtx{token: asn1tools.AddASNAppTag(append(append(oid, 1, 0), b...), 0), key: auth.SubKey, mutual: mutual}
}

func (g gssCtx) wrap(payload []byte) []byte {
	w, _ := gssapi.NewInitiatorWrapToken(payload, g.key)
	b, _ := w.Marshal()
	return b
}

// FuzzSaslGssapi sends a client token and an answer to the server's
// security-layer offer. In the token, "{t}" becomes a fresh valid token
// of f's, "{m}" the same asking for mutual authentication, "{g}" one of
// g's (no account) and "{o}" f's ticket for pop/other, whose key the
// keytab also holds. An answer "{p}…" is the rest wrapped under the
// context's key (when there is one), anything else is sent as it is.
// The fuzzer holds no key: +OK must come exactly for a token that is
// "{t}" or "{m}" and a wrapped answer choosing no layer (1) with an
// empty authorization identity or f's.
func FuzzSaslGssapi(f *testing.F) {
	for _, s := range [][2]string{
		{"{t}", "{p}\x01\x00\x00\x00"}, {"{m}", "{p}\x01\x00\x00\x00f"}, {"{t}", "{p}\x01\x00\x00\x00g"},
		{"{t}", "{p}\x04\x00\x10\x00"}, {"{t}", "{p}\x01"}, {"{g}", "{p}\x01\x00\x00\x00"}, {"{o}", "{p}\x01\x00\x00\x00"},
		{"{t}\x00", "{p}\x01\x00\x00\x00"}, {"{t}", "\x05\x04\x00\xff\x00\x0c\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00"},
		{"`\x0b\x06\x09*\x86H\x86\xf7\x12\x01\x02\x02", ""}, {"`\x0d\x06\x09*\x86H\x86\xf7\x12\x01\x02\x02\x01\x00", ""},
		{"`\x84\x00\x00\x00\x10", ""}, {"", ""},
	} {
		f.Add([]byte(s[0]), []byte(s[1]))
	}
	fuzzbound.Fuzz(f, func(t *testing.T, token, answer []byte) {
		gssServer(t)
		var ctx gssCtx
		tok := token
		for _, p := range []struct {
			ph, client, service string
			mutual              bool
		}{
			{"{t}", "f", "pop/fuzz.test", false}, {"{m}", "f", "pop/fuzz.test", true},
			{"{g}", "g", "pop/fuzz.test", false}, {"{o}", "f", "pop/other", false},
		} {
			if bytes.Contains(tok, []byte(p.ph)) {
				ctx = forgeGSS(t, p.client, p.service, p.mutual)
				tok = bytes.ReplaceAll(tok, []byte(p.ph), ctx.token)
			}
		}
		ans := answer
		payload, wrapped := bytes.CutPrefix(answer, []byte("{p}"))
		if wrapped && ctx.key.KeyType != 0 {
			ans = ctx.wrap(payload)
		}
		valid := (string(token) == "{t}" || string(token) == "{m}") && wrapped &&
			len(payload) >= 4 && payload[0] == 1 && (len(payload) == 4 || foldGSS(string(payload[4:])) == "f")

		c := dialGSS(t)
		defer c.close()
		if r := c.step("AUTH GSSAPI"); r != "+ " {
			t.Fatalf("AUTH GSSAPI: %q", r)
		}
		r := c.step(b64(tok))
		if strings.HasPrefix(r, "+ ") && string(token) == "{m}" {
			r = c.step("") // the client's empty answer to the AP-REP
		}
		if strings.HasPrefix(r, "+ ") {
			r = c.step(b64(ans))
		}
		switch {
		case valid && !strings.HasPrefix(r, "+OK"):
			t.Fatalf("token %q, answer %q: a valid login refused: %q\n%s", token, answer, r, c.pc.Transcript())
		case !valid && r != authFailed && !strings.HasPrefix(r, "-ERR SASL response too long"):
			t.Fatalf("token %q, answer %q: an invalid login got %q\n%s", token, answer, r, c.pc.Transcript())
		}
	})
}

// foldGSS is the default profile's user-name folding (UserNameCase).
func foldGSS(u string) string { return strings.ToLower(u) }

func dialGSS(t *testing.T) *saslConn { return dialServer(t, gssServer(t)) }

// FuzzSaslGssapiParse holds the token parsers alone, and gokrb5's AP-REQ
// decoder behind them: no panic, memory bounded by the input's size, and
// what ParseGSSToken accepts is exactly the framing it was given.
func FuzzSaslGssapiParse(f *testing.F) {
	gssServer(f)
	f.Add(forgeGSS(f, "f", "pop/fuzz.test", true).token)
	f.Add([]byte("\x05\x04\x00\xff\x00\x0c\x00\x05\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00abcdefghijkl"))
	f.Add([]byte("`\x84\x00\x00\x00\x10\x06\x09*\x86H\x86\xf7\x12\x01\x02\x02\x01\x00"))
	f.Add([]byte("`\x0c\x06\x06\x2b\x06\x01\x05\x05\x02\xa0\x02\x30\x00"))
	fuzzbound.Fuzz(f, func(t *testing.T, b []byte) {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		before := ms.TotalAlloc
		id, body, err := saslmech.ParseGSSToken(b)
		if err == nil {
			var req messages.APReq
			_ = req.Unmarshal(body)
			// The framing round-trips: 0x60, the length, the OID, TOK_ID.
			oid := b[len(b)-len(body)-2-11 : len(b)-len(body)-2]
			re := asn1tools.AddASNAppTag(append(append(append([]byte(nil), oid...), byte(id>>8), byte(id)), body...), 0)
			if !bytes.Equal(re, b) {
				t.Fatalf("%x: parsed as TOK_ID %04x and %x, which frame as %x", b, id, body, re)
			}
		}
		if w, err := saslmech.ParseGSSWrap(b); err == nil {
			if len(w.Payload)+len(w.Checksum) != len(b)-16 || w.Flags&0x02 != 0 {
				t.Fatalf("%x: wrap token %+v", b, w)
			}
		}
		runtime.ReadMemStats(&ms)
		// Decoding may copy the input a few times (base64 already did,
		// the rotation of a Wrap token, ASN.1's byte strings), never
		// allocate in proportion to a length field it was told.
		if got := ms.TotalAlloc - before; got > 64*uint64(len(b))+256<<10 {
			t.Fatalf("%d octets of input allocated %d octets", len(b), got)
		}
	})
}
