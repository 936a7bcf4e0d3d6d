package saslmech

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/asn1tools"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/gssapi"
	"github.com/jcmturner/gokrb5/v8/iana/asnAppTag"
	"github.com/jcmturner/gokrb5/v8/iana/chksumtype"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/pop3kit/pop3kit/internal/saslhook"
)

// GSSAPI (RFC 4752) over the Kerberos V5 GSS-API mechanism (RFC 4121),
// server side. github.com/jcmturner/gokrb5 decodes and decrypts the
// AP-REQ with the keytab, checks the ticket's times, the client address
// and the clock skew (RFC 4120 §3.2.3), keeps the replay cache, and
// computes the Wrap tokens' checksums. This package adds what a GSS
// acceptor does around it: the RFC 2743 §3.1 token framing, the ticket's
// service name, the authenticator checksum 0x8003 and its flags (RFC 4121
// §4.1.1), the AP-REP for mutual authentication (gokrb5 only reads
// them), the security-layer round of RFC 4752 §3.3 (only "no security
// layer" is offered), the principal-to-user mapping, and the timing rules
// of every login.
//
// The exchange, after AUTH GSSAPI [initial token]:
//
//	C: InitialContextToken (AP-REQ)   S: AP-REP token (mutual only)
//	C: "" (mutual only)               S: Wrap(01 000000)
//	C: Wrap(01 xxxxxx authzid)        S: +OK
//
// Only RFC 4121's token formats are spoken, so only the enctypes they
// cover: AES with HMAC-SHA1 (RFC 3962) and with HMAC-SHA2 (RFC 8009).
// DES, 3DES and RC4 keys would need RFC 1964's tokens; they are refused.

// gssapiMaxSkew is the clock skew a ticket's times and an authenticator's
// timestamp may show (RFC 4120 §1.6: "typically on the order of 5
// minutes"); the replay cache keeps authenticators that long. An
// acceptor takes the value when NewAcceptor builds it (a test may set
// another: internal/saslhook).
const gssapiMaxSkew = 5 * time.Minute

// maxReplayEntries bounds the replay cache. Only authenticators that
// decrypted under a ticket for this service enter it, so only clients
// of the realm fill it; at 64 Ki logins within the skew window it
// refuses new ones (failing closed) rather than grow.
const maxReplayEntries = 1 << 16

// The mechanism OIDs a client's first token may name (RFC 2743 §3.1),
// DER-encoded with their tag and length.
var (
	oidKRB5   = []byte{0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02} // 1.2.840.113554.1.2.2, RFC 4121
	oidMSKRB5 = []byte{0x06, 0x09, 0x2a, 0x86, 0x48, 0x82, 0xf7, 0x12, 0x01, 0x02, 0x02} // 1.2.840.48018.1.2.2, Windows' "erroneous" OID
	oidSPNEGO = []byte{0x06, 0x06, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x02}                   // 1.3.6.1.5.5.2, RFC 4178
)

// TOK_ID values of RFC 4121 §4.1 and §4.2.6.2: what ParseGSSToken
// returns for an AP-REQ, an AP-REP or a KRB-ERROR (and the Wrap token's).
const (
	GSSTokAPReq uint16 = 0x0100
	GSSTokAPRep uint16 = 0x0200
	GSSTokError uint16 = 0x0300
	gssTokWrap  uint16 = 0x0504
)

// Flags of a Wrap token (RFC 4121 §4.2.2).
const (
	wrapSentByAcceptor = 0x01
	wrapSealed         = 0x02
	wrapAcceptorSubkey = 0x04
)

// Context flags in the authenticator checksum (RFC 4121 §4.1.1.1).
const gssMutualFlag = 2

// RFC 4752 §3.3's security layers; the server offers "no security layer" only,
// as POP3 after AUTH has no framing to carry another (and TLS does it
// better).
const (
	saslLayerNone = 1
)

var (
	errGSSFraming = errors.New("not an RFC 2743 §3.1 InitialContextToken")
	errGSSSPNEGO  = errors.New("an SPNEGO token (Microsoft's GSSAPI, MS-SSEAN): only raw Kerberos V5 (RFC 4752) is offered")
	errGSSMech    = errors.New("not the Kerberos V5 mechanism (1.2.840.113554.1.2.2)")
	errGSSWrap    = errors.New("not an RFC 4121 Wrap token")
)

// ParseGSSToken reads an RFC 2743 §3.1 InitialContextToken of the
// Kerberos V5 mechanism: 0x60, its DER length, the mechanism OID, then
// RFC 4121 §4.1's two-octet TOK_ID and the Kerberos message. body is
// that message, a subslice of b. The length must cover b exactly: a
// token with trailing octets is refused, not trimmed. Windows' Kerberos
// OID 1.2.840.48018.1.2.2 is accepted as Kerberos; SPNEGO is refused
// with its own error, so that the log says what the client spoke.
func ParseGSSToken(b []byte) (tokID uint16, body []byte, err error) {
	if len(b) < 2 || b[0] != 0x60 {
		return 0, nil, errGSSFraming
	}
	n, hdr, ok := derLength(b[1:])
	if !ok || n != len(b)-1-hdr {
		return 0, nil, errGSSFraming
	}
	inner := b[1+hdr:]
	var rest []byte
	switch {
	case bytes.HasPrefix(inner, oidKRB5):
		rest = inner[len(oidKRB5):]
	case bytes.HasPrefix(inner, oidMSKRB5):
		rest = inner[len(oidMSKRB5):]
	case bytes.HasPrefix(inner, oidSPNEGO):
		return 0, nil, errGSSSPNEGO
	default:
		return 0, nil, errGSSMech
	}
	if len(rest) < 2 {
		return 0, nil, errGSSFraming
	}
	return binary.BigEndian.Uint16(rest), rest[2:], nil
}

// derLength reads a DER length (X.690 §8.1.3, minimal form, at most four
// octets: no token the server reads comes near 4 GiB) and returns it and the
// octets it took.
func derLength(b []byte) (n, size int, ok bool) {
	if len(b) == 0 {
		return 0, 0, false
	}
	if b[0] < 0x80 {
		return int(b[0]), 1, true
	}
	k := int(b[0] & 0x7f)
	if k == 0 || k > 4 || len(b) < 1+k || b[1] == 0 {
		return 0, 0, false
	}
	for _, c := range b[1 : 1+k] {
		n = n<<8 | int(c)
	}
	if n < 0x80 {
		return 0, 0, false // not minimal
	}
	return n, 1 + k, true
}

// gssToken frames a Kerberos message as an RFC 4121 §4.1 context token.
func gssToken(tokID uint16, msg []byte) []byte {
	inner := make([]byte, 0, len(oidKRB5)+2+len(msg))
	inner = append(inner, oidKRB5...)
	inner = binary.BigEndian.AppendUint16(inner, tokID)
	inner = append(inner, msg...)
	return asn1tools.AddASNAppTag(inner, 0)
}

// GSSWrap is a Wrap token (RFC 4121 §4.2.6.2) as ParseGSSWrap reads it.
// Payload and Checksum are subslices of the token, or of a copy when the
// token was rotated (RRC > 0).
type GSSWrap struct {
	Flags    byte
	Seq      uint64
	Payload  []byte
	Checksum []byte
}

// ParseGSSWrap reads a Wrap token without confidentiality: TOK_ID 05 04,
// the flags, the filler 0xFF, EC (the checksum's length), RRC (a right
// rotation of what follows the header, undone here) and the sequence
// number. Sealed tokens are refused: RFC 4752 §3.1 wraps the
// security-layer messages with conf_flag FALSE, and the server offers no
// confidentiality layer.
func ParseGSSWrap(b []byte) (GSSWrap, error) {
	if len(b) < gssapi.HdrLen || binary.BigEndian.Uint16(b) != gssTokWrap || b[3] != gssapi.FillerByte {
		return GSSWrap{}, errGSSWrap
	}
	w := GSSWrap{Flags: b[2], Seq: binary.BigEndian.Uint64(b[8:16])}
	if w.Flags&^(wrapSentByAcceptor|wrapSealed|wrapAcceptorSubkey) != 0 {
		return GSSWrap{}, errGSSWrap
	}
	if w.Flags&wrapSealed != 0 {
		return GSSWrap{}, errors.New("a sealed Wrap token: no confidentiality layer is offered")
	}
	ec, rrc := int(binary.BigEndian.Uint16(b[4:6])), int(binary.BigEndian.Uint16(b[6:8]))
	data := b[gssapi.HdrLen:]
	if ec > len(data) {
		return GSSWrap{}, errGSSWrap
	}
	if len(data) > 0 {
		if r := rrc % len(data); r != 0 {
			// The sender rotated right by RRC; rotate left to undo it.
			data = append(slices.Clone(data[r:]), data[:r]...)
		}
	}
	w.Payload, w.Checksum = data[:len(data)-ec], data[len(data)-ec:]
	return w, nil
}

// wrap returns a Wrap token of payload from the acceptor, integrity only.
func wrap(payload []byte, key types.EncryptionKey, seq uint64) ([]byte, error) {
	et, err := crypto.GetEtype(key.KeyType)
	if err != nil {
		return nil, err
	}
	w := gssapi.WrapToken{Flags: wrapSentByAcceptor, EC: uint16(et.GetHMACBitLength() / 8), SndSeqNum: seq, Payload: payload}
	if err := w.SetCheckSum(key, keyusage.GSSAPI_ACCEPTOR_SEAL); err != nil {
		return nil, err
	}
	return w.Marshal()
}

// rfc4121Key reports whether RFC 4121's tokens are defined for the key's
// enctype (its §6: the others keep RFC 1964's formats).
func rfc4121Key(t int32) bool {
	switch t {
	case etypeID.AES128_CTS_HMAC_SHA1_96, etypeID.AES256_CTS_HMAC_SHA1_96,
		etypeID.AES128_CTS_HMAC_SHA256_128, etypeID.AES256_CTS_HMAC_SHA384_192:
		return true
	}
	return false
}

// Acceptor is GSSAPI's acceptor credential: the service principal's keys
// in a keytab, read at start and again when the file changes (a key
// rotated with ktadd needs no restart), and the realm whose principals
// are the server's users. Config.Acceptor offers GSSAPI with it.
type Acceptor struct {
	path      string
	service   types.PrincipalName // pop/host
	realm     string              // the service's realm
	userRealm string              // user@userRealm logs in as user
	skew      time.Duration
	replays   gssReplayCache

	mu    sync.Mutex
	kt    *keytab.Keytab
	mtime time.Time
	size  int64
}

// NewAcceptor reads the keytab at path and checks that it holds a key of
// the service principal spn (service/host[@REALM]; without a realm, the
// keytab's if it holds the principal in one only). Principals
// user@userRealm log in as user; userRealm "" is the service's realm.
func NewAcceptor(path, spn, userRealm string) (*Acceptor, error) {
	name, realm, _ := strings.Cut(spn, "@")
	comps := strings.Split(name, "/")
	if name == "" || slices.Contains(comps, "") {
		return nil, fmt.Errorf("service principal %q: want service/host[@REALM]", spn)
	}
	a := &Acceptor{path: path, service: types.PrincipalName{NameType: 3 /* NT-SRV-HST */, NameString: comps}, realm: realm, skew: saslhook.GSSAPIMaxSkew(gssapiMaxSkew)}
	kt, mtime, size, err := loadKeytab(path)
	if err != nil {
		return nil, err
	}
	var realms, have []string
	for _, e := range kt.Entries {
		have = append(have, strings.Join(e.Principal.Components, "/")+"@"+e.Principal.Realm)
		if slices.Equal(e.Principal.Components, comps) && !slices.Contains(realms, e.Principal.Realm) {
			realms = append(realms, e.Principal.Realm)
		}
	}
	switch {
	case realm == "" && len(realms) == 1:
		a.realm = realms[0]
	case realm == "" && len(realms) > 1:
		return nil, fmt.Errorf("keytab %s holds %s in realms %s: name one in gssapi_service_principal (%s@REALM)", path, name, strings.Join(realms, ", "), name)
	case !slices.Contains(realms, a.realm):
		return nil, fmt.Errorf("keytab %s holds no key for %s (it holds %s); set gssapi_service_principal", path, spn, strings.Join(have, ", "))
	}
	a.userRealm = userRealm
	if a.userRealm == "" {
		a.userRealm = a.realm
	}
	a.kt, a.mtime, a.size = kt, mtime, size
	return a, nil
}

func loadKeytab(path string) (*keytab.Keytab, time.Time, int64, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, time.Time{}, 0, err
	}
	kt, err := keytab.Load(path)
	if err != nil {
		return nil, time.Time{}, 0, fmt.Errorf("keytab %s: %v", path, err)
	}
	return kt, st.ModTime(), st.Size(), nil
}

// keytab returns the keytab, read again if the file changed since. A file
// that cannot be read or no longer holds the service's key leaves the one
// in use, and is tried again at the next login.
func (a *Acceptor) keytab() *keytab.Keytab {
	a.mu.Lock()
	defer a.mu.Unlock()
	if st, err := os.Stat(a.path); err == nil && (!st.ModTime().Equal(a.mtime) || st.Size() != a.size) {
		if kt, mtime, size, err := loadKeytab(a.path); err == nil {
			if a.holds(kt) {
				a.kt, a.mtime, a.size = kt, mtime, size
			}
		}
	}
	return a.kt
}

// holds reports whether kt has any key of the service principal.
func (a *Acceptor) holds(kt *keytab.Keytab) bool {
	for _, e := range kt.Entries {
		if e.Principal.Realm == a.realm && slices.Equal(e.Principal.Components, a.service.NameString) {
			return true
		}
	}
	return false
}

// gssContext is what a verified AP-REQ establishes.
type gssContext struct {
	user   string // the principal's name, mapped: "" when it maps to none
	why    string // why the principal maps to no user
	mutual bool
	key    types.EncryptionKey // per-message tokens' key: the initiator's subkey, else the ticket's session key
	seq    uint64              // the acceptor's sequence number
	apRep  []byte              // the AP-REP token, for mutual authentication
}

// accept verifies the AP-REQ in token (RFC 4120 §3.2.3, RFC 4121 §4.1)
// from a client at addr and returns the context, or why not.
func (a *Acceptor) accept(token []byte, addr net.Addr) (*gssContext, error) {
	tokID, body, err := ParseGSSToken(token)
	if err != nil {
		return nil, err
	}
	if tokID != GSSTokAPReq {
		return nil, fmt.Errorf("TOK_ID %04x, not an AP-REQ", tokID)
	}
	var req messages.APReq
	if err := req.Unmarshal(body); err != nil {
		return nil, fmt.Errorf("AP-REQ: %v", err)
	}
	// The ticket must be for this service, not merely for one whose key
	// the keytab also holds (RFC 4752 §3.2).
	if !req.Ticket.SName.Equal(a.service) || req.Ticket.Realm != a.realm {
		return nil, fmt.Errorf("the ticket is for %s@%s, not %s@%s", req.Ticket.SName.PrincipalNameString(), req.Ticket.Realm, a.service.PrincipalNameString(), a.realm)
	}
	if types.IsFlagSet(&req.APOptions, flags.APOptionUseSessionKey) {
		return nil, errors.New("user-to-user tickets are not accepted")
	}
	var ca types.HostAddress
	if t, ok := addr.(*net.TCPAddr); ok {
		ca = types.HostAddressFromNetIP(t.IP)
	}
	// Verify decrypts the ticket with the keytab's key and the
	// authenticator with the ticket's session key, and checks the
	// ticket's times, its addresses, that the authenticator names the
	// ticket's client, and the clock skew.
	if ok, err := req.Verify(a.keytab(), a.skew, ca, &a.service); err != nil || !ok {
		if err == nil {
			err = errors.New("ticket not valid")
		}
		return nil, fmt.Errorf("AP-REQ: %v", err)
	}
	tkt, auth := &req.Ticket.DecryptedEncPart, &req.Authenticator
	if auth.CRealm != tkt.CRealm {
		return nil, errors.New("the authenticator's realm is not the ticket's")
	}
	// The replay cache records the authenticator now, whatever comes
	// next, so that a token seen once is never accepted again.
	if err := a.replays.add(req.EncryptedAuthenticator.Cipher, auth.CTime.Add(time.Duration(auth.Cusec)*time.Microsecond).Add(a.skew)); err != nil {
		return nil, err
	}
	// RFC 4121 §4.1.1: the authenticator's checksum is of type 0x8003,
	// Lgth (16, the channel-binding hash), Bnd, then the context flags.
	ck := auth.Cksum.Checksum
	if auth.Cksum.CksumType != chksumtype.GSSAPI || len(ck) < 24 || binary.LittleEndian.Uint32(ck) != 16 {
		return nil, errors.New("the authenticator has no RFC 4121 checksum (0x8003)")
	}
	// The channel bindings (Bnd) are not checked: the server passes none,
	// and an acceptor without bindings accepts any (RFC 4121 §4.1.1.2).
	ctxFlags := binary.LittleEndian.Uint32(ck[20:24])
	c := &gssContext{
		mutual: ctxFlags&gssMutualFlag != 0 || types.IsFlagSet(&req.APOptions, flags.APOptionMutualRequired),
		key:    tkt.Key,
		seq:    uint64(uint32(auth.SeqNumber)),
	}
	if auth.SubKey.KeyType != 0 {
		c.key = auth.SubKey
	}
	if !rfc4121Key(c.key.KeyType) {
		return nil, fmt.Errorf("enctype %d needs RFC 1964 tokens; only RFC 4121's (AES) are spoken", c.key.KeyType)
	}
	c.user, c.why = a.mapUser(tkt.CName, tkt.CRealm)
	if c.mutual {
		// The acceptor picks its own initial sequence number and sends it
		// in the AP-REP; without mutual authentication it continues the
		// initiator's, as MIT's acceptor does.
		n, _ := rand.Int(rand.Reader, big.NewInt(1<<30-1))
		c.seq = n.Uint64() + 1
		if c.apRep, err = apRep(auth, tkt.Key, c.seq); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// mapUser maps a client principal to a server user: user@REALM, one
// component, in the users' realm. Other realms, and names with an
// instance (alice/admin), map to none.
func (a *Acceptor) mapUser(cname types.PrincipalName, realm string) (user, why string) {
	switch {
	case realm != a.userRealm:
		return "", "principal " + cname.PrincipalNameString() + "@" + realm + " is not in realm " + a.userRealm
	case len(cname.NameString) != 1 || cname.NameString[0] == "":
		return "", "principal " + cname.PrincipalNameString() + "@" + realm + " is not user@" + a.userRealm
	}
	return cname.NameString[0], ""
}

// encAPRepPart is RFC 4120 §5.5.2's EncAPRepPart, without a subkey: the
// context then uses the initiator's subkey (RFC 4121 §2).
type encAPRepPart struct {
	CTime     time.Time `asn1:"generalized,explicit,tag:0"`
	Cusec     int       `asn1:"explicit,tag:1"`
	SeqNumber int64     `asn1:"optional,explicit,tag:3"`
}

// apRep returns the AP-REP token answering auth: its ctime and cusec,
// and the acceptor's sequence number, encrypted in the ticket's session
// key (RFC 4120 §3.2.4), framed as RFC 4121 §4.1 says.
func apRep(auth *types.Authenticator, sessionKey types.EncryptionKey, seq uint64) ([]byte, error) {
	part, err := asn1.Marshal(encAPRepPart{CTime: auth.CTime.UTC().Truncate(time.Second), Cusec: auth.Cusec, SeqNumber: int64(seq)})
	if err != nil {
		return nil, err
	}
	enc, err := crypto.GetEncryptedData(asn1tools.AddASNAppTag(part, asnAppTag.EncAPRepPart), sessionKey, keyusage.AP_REP_ENCPART, 0)
	if err != nil {
		return nil, err
	}
	rep, err := asn1.Marshal(messages.APRep{PVNO: 5, MsgType: msgtype.KRB_AP_REP, EncPart: enc})
	if err != nil {
		return nil, err
	}
	return gssToken(GSSTokAPRep, asn1tools.AddASNAppTag(rep, asnAppTag.APREP)), nil
}

// gssServer is one GSSAPI exchange.
type gssServer struct {
	x    *exchange
	a    *Acceptor
	step int
	ctx  *gssContext
}

func startGSSAPI(x *exchange, _ string) sasl.Server {
	return &gssServer{x: x, a: x.cfg.Acceptor}
}

var errGSSSteps = errors.New("unexpected message after the exchange")

// refuse rejects the exchange for the log's reason why, which a test may
// hear (internal/saslhook), so that it can tell one refusal from another.
func (s *gssServer) refuse(why string) error {
	saslhook.GSSAPIRefused(why)
	return s.x.reject(why)
}

func (s *gssServer) Next(response []byte) ([]byte, bool, error) {
	switch s.step {
	case 0:
		if response == nil {
			return []byte{}, false, nil // "+ ": the client speaks first
		}
		s.step = 1
		return s.accept(response)
	case 1:
		// The client's empty answer to the AP-REP (RFC 4752 §3.1).
		if len(response) != 0 {
			return nil, false, s.refuse("data in answer to the AP-REP")
		}
		s.step = 2
		return s.offer()
	case 2:
		s.step = 3
		return s.choose(response)
	}
	return nil, false, errGSSSteps
}

// accept checks the client's AP-REQ. The principal is known only once
// the ticket is decrypted; its user is then named, and the attempt waits
// for its turn, before the rest is checked.
func (s *gssServer) accept(token []byte) ([]byte, bool, error) {
	x := s.x
	if s.a == nil { // the table offers GSSAPI only with a keytab
		return nil, false, s.refuse("no keytab")
	}
	c, err := s.a.accept(token, x.h.RemoteAddr())
	user := ""
	if err == nil {
		user = c.user
	}
	x.name(user)
	admitted := x.admit()
	switch {
	case err != nil:
		return nil, false, s.refuse(boundedWhy(err.Error()))
	case c.user == "":
		return nil, false, s.refuse(c.why)
	case !admitted:
		return nil, false, s.refuse("bad user name")
	case x.lookup() == nil:
		return nil, false, s.refuse("no such user")
	}
	s.ctx = c
	if c.mutual {
		return c.apRep, false, nil
	}
	s.step = 2
	return s.offer()
}

// offer sends the security layers on offer and the largest message the
// server takes (RFC 4752 §3.3): no layer, and 0.
func (s *gssServer) offer() ([]byte, bool, error) {
	out, err := wrap([]byte{saslLayerNone, 0, 0, 0}, s.ctx.key, s.ctx.seq)
	if err != nil {
		return nil, false, s.refuse("wrap: " + err.Error())
	}
	return out, false, nil
}

// choose checks the client's wrapped answer: its integrity, that it
// chose no layer, and that the authorization identity is empty or the
// user itself (no proxy authorization). Its sequence number is not
// checked: it is the context's first and only token, a replay of it
// would need the replayed AP-REQ the cache refuses, and initiators
// differ on where they start (gokrb5 at 0, MIT at the authenticator's).
func (s *gssServer) choose(token []byte) ([]byte, bool, error) {
	x := s.x
	w, err := ParseGSSWrap(token)
	if err != nil {
		return nil, false, s.refuse(err.Error())
	}
	if w.Flags&(wrapSentByAcceptor|wrapAcceptorSubkey) != 0 {
		return nil, false, s.refuse("the Wrap token's flags are not an initiator's under its own subkey")
	}
	et, err := crypto.GetEtype(s.ctx.key.KeyType)
	if err != nil || len(w.Checksum) != et.GetHMACBitLength()/8 {
		return nil, false, s.refuse("the Wrap token's checksum has the wrong length")
	}
	wt := gssapi.WrapToken{Flags: w.Flags, EC: uint16(len(w.Checksum)), SndSeqNum: w.Seq, Payload: w.Payload, CheckSum: w.Checksum}
	if ok, _ := wt.Verify(s.ctx.key, keyusage.GSSAPI_INITIATOR_SEAL); !ok {
		return nil, false, s.refuse("the Wrap token's checksum does not verify")
	}
	switch p := w.Payload; {
	case len(p) < 4:
		return nil, false, s.refuse("the security-layer answer is shorter than 4 octets")
	case p[0] != saslLayerNone:
		return nil, false, s.refuse(fmt.Sprintf("the client chose security layers %#x; only none (1) is offered", p[0]))
	case len(p) > 4 && x.h.UserName(string(p[4:])) != x.user:
		return nil, false, s.refuse("proxy authorization is not offered: authzid " + strconvQuote(string(p[4:])))
	}
	return nil, true, nil
}

// boundedWhy keeps a library's error short enough for one log line.
func boundedWhy(s string) string {
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// gssReplayCache remembers the authenticators accepted (RFC 4120 §3.2.3)
// until their timestamp is older than the skew allows, when Verify
// refuses them anyway. An authenticator is known by the hash of its
// ciphertext: it is integrity-protected under the session key, so a
// replay is the same octets, and two clients' authenticators of the same
// microsecond are not confused (as MIT's cache also hashes them).
type gssReplayCache struct {
	mu    sync.Mutex
	seen  map[[sha256.Size]byte]time.Time // until when each is kept
	swept time.Time
}

var errGSSReplay = errors.New("a replayed authenticator")

// add records the authenticator cipher, kept until expires; an error if
// it was seen or the cache is full.
func (c *gssReplayCache) add(cipher []byte, expires time.Time) error {
	k := sha256.Sum256(cipher)
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen == nil {
		c.seen = map[[sha256.Size]byte]time.Time{}
	}
	if _, ok := c.seen[k]; ok {
		return errGSSReplay
	}
	if len(c.seen) >= maxReplayEntries || now.Sub(c.swept) > time.Minute {
		for k, until := range c.seen {
			if now.After(until) {
				delete(c.seen, k)
			}
		}
		c.swept = now
		if len(c.seen) >= maxReplayEntries {
			return errors.New("the replay cache is full: too many logins within the clock skew")
		}
	}
	c.seen[k] = expires
	return nil
}
