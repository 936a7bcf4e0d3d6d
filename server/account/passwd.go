package account

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-crypt/crypt"
	"github.com/go-crypt/crypt/algorithm"
	"github.com/go-crypt/crypt/algorithm/argon2"
	"github.com/go-crypt/crypt/algorithm/bcrypt"
	"github.com/go-crypt/crypt/algorithm/shacrypt"
)

// Account is one user of a passwd-file.
type Account struct {
	User   string
	Scheme string // upper case: PLAIN, SHA512-CRYPT, BLF-CRYPT, ARGON2ID, …
	secret string
	digest algorithm.Digest // nil for PLAIN
	cost   int64            // bytes a verification allocates, charged in the auth pool
	// overCap is set once a verification found cost above the pool's
	// memory cap and said so in the log, so the warning comes once per
	// account and load, not once per login of a flood.
	overCap atomic.Bool
	sasl    saslSecrets // SCRAM and CRAM-MD5 secrets (saslmech's scram.go, crammd5.go)
	// Quota is the user's storage quota in octets from the extra field
	// userdb_quota_rule=*:storage=SIZE (Dovecot's); 0: the server's.
	Quota int64
}

// Cost is what one verification of the account's password allocates:
// argon2's m, or SmallHashCost for the other schemes. pop3d's verification
// pool charges it against auth_memory.
func (a *Account) Cost() int64 { return a.cost }

// OverCapOnce reports true the first time it is called for an account
// (per load of its file): a server warns once, not at every login of a
// flood, that the account's hash needs more memory than its cap.
func (a *Account) OverCapOnce() bool { return !a.overCap.Swap(true) }

// plainSchemes store the password itself.
var plainSchemes = map[string]bool{"PLAIN": true, "CLEARTEXT": true}

// cryptSchemes are the Dovecot schemes whose secret is a crypt(3) string
// that the decoder reads by its "$id$" prefix. CRYPT is Dovecot's default
// when a line has no {SCHEME}.
var cryptSchemes = map[string]bool{
	"CRYPT": true, "SHA512-CRYPT": true, "SHA256-CRYPT": true, "BLF-CRYPT": true,
	"ARGON2ID": true, "ARGON2I": true,
}

// decoder reads the hashes pop3d accepts: argon2, bcrypt and SHA-crypt.
// Weaker ones (MD5-crypt, DES) are deliberately not registered.
var decoder = func() *crypt.Decoder {
	d := crypt.NewDecoder()
	for _, reg := range []func(algorithm.DecoderRegister) error{argon2.RegisterDecoder, bcrypt.RegisterDecoder, shacrypt.RegisterDecoder} {
		if err := reg(d); err != nil {
			panic(err) // registering built-in decoders cannot fail
		}
	}
	return d
}()

// ParseAccount reads one passwd-file line in Dovecot's format:
//
//	user:{SCHEME}secret[:uid:gid:gecos:home:shell:extra]
//
// A secret without {SCHEME} is CRYPT, as in Dovecot.
func ParseAccount(line string) (*Account, error) {
	user, rest, ok := strings.Cut(line, ":")
	if !ok {
		return nil, errors.New("want user:{SCHEME}secret")
	}
	if err := CheckUserName(user); err != nil {
		return nil, err
	}
	secret, _, _ := strings.Cut(rest, ":")
	scheme := "CRYPT"
	if strings.HasPrefix(secret, "{") {
		end := strings.IndexByte(secret, '}')
		if end < 0 {
			return nil, errors.New("unterminated {SCHEME}")
		}
		scheme, secret = strings.ToUpper(secret[1:end]), secret[end+1:]
	}
	a := &Account{User: user, Scheme: scheme, secret: secret, cost: SmallHashCost}
	switch {
	case plainSchemes[scheme]:
	case scheme == "SCRAM-SHA-256":
		c, err := parseSCRAM(secret)
		if err != nil {
			return nil, fmt.Errorf("%s secret: %v", scheme, err)
		}
		a.sasl.scram = c
	case scheme == "CRAM-MD5":
		k, err := parseCRAM(secret)
		if err != nil {
			return nil, fmt.Errorf("%s secret: %v", scheme, err)
		}
		a.sasl.cram = k
	case scheme == "NTLM":
		if _, err := parseNTLMSecret(secret); err != nil {
			return nil, fmt.Errorf("%s secret: %v", scheme, err)
		}
	case cryptSchemes[scheme]:
		d, err := decoder.Decode(secret)
		if err != nil {
			return nil, fmt.Errorf("%s secret: %v", scheme, err)
		}
		a.digest = d
		if strings.HasPrefix(secret, "$argon2") {
			// The cost comes from the parsed digest's own encoding, so
			// it is the m the library will allocate.
			c, ok := argon2Cost(d.Encode())
			if !ok {
				return nil, fmt.Errorf("%s secret: no m= parameter", scheme)
			}
			a.cost = c
		}
	default:
		return nil, fmt.Errorf("unsupported scheme {%s} (use PLAIN, SHA512-CRYPT, SHA256-CRYPT, BLF-CRYPT, ARGON2ID, ARGON2I, SCRAM-SHA-256, CRAM-MD5 or NTLM)", scheme)
	}
	if secret == "" {
		return nil, errors.New("empty secret")
	}
	// The extra fields, after uid:gid:gecos:home:shell, are
	// space-separated key=value pairs (Dovecot's passwd-file).
	if f := strings.SplitN(rest, ":", 7); len(f) == 7 {
		for _, kv := range strings.Fields(f[6]) {
			if v, ok := strings.CutPrefix(kv, "userdb_quota_rule=*:storage="); ok {
				q, err := parseQuotaSize(v)
				if err != nil {
					return nil, fmt.Errorf("userdb_quota_rule: %v", err)
				}
				a.Quota = q
			}
		}
	}
	return a, nil
}

// Verify reports whether password is the account's. Stored hashes are
// compared by their libraries in constant time; plain secrets with
// crypto/subtle; SCRAM, CRAM-MD5 and NTLM secrets by deriving them again.
func (a *Account) Verify(password []byte) bool {
	switch {
	case a.digest != nil:
		return a.digest.MatchBytes(password)
	case a.sasl.scram != nil:
		return a.sasl.scram.verify(password)
	case a.sasl.cram != nil:
		return subtle.ConstantTimeCompare([]byte(cramFromPassword(string(password)).String()), []byte(a.sasl.cram.String())) == 1
	case a.Scheme == "NTLM":
		return subtle.ConstantTimeCompare([]byte(hashNTLM(string(password))), []byte(strings.ToLower(a.secret))) == 1
	}
	return subtle.ConstantTimeCompare([]byte(a.secret), password) == 1
}

// PlainSecret returns the stored password when the account keeps it in
// the clear, as APOP needs (RFC 1939 §7); accounts with a hash have none.
func (a *Account) PlainSecret() (string, bool) {
	if !plainSchemes[a.Scheme] {
		return "", false
	}
	return a.secret, true
}

// CheckUserName refuses names that could reach outside the mail root or
// break the passwd-file: empty, ".", "..", a leading dot, "/", "\", ":",
// NUL or other control characters, or longer than 255 octets.
func CheckUserName(name string) error {
	switch {
	case name == "":
		return errors.New("empty user name")
	case len(name) > 255:
		return errors.New("user name longer than 255 octets")
	case name[0] == '.':
		return fmt.Errorf("user name %q starts with a dot", name)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < 0x20 || c == 0x7f || c == '/' || c == '\\' || c == ':' {
			return fmt.Errorf("user name %q contains %q", name, c)
		}
	}
	return nil
}

// shaCryptRounds is the SHA-crypt cost pop3d writes: 5,000 rounds, the
// default of glibc and of Dovecot's doveadm pw (about 1 ms a login here).
// The library's own default, 500,000, costs 100 ms and 32 MB of
// allocation per login, which a failed-login flood would turn into CPU
// and memory pressure.
const shaCryptRounds = 5000

// HashPassword returns the {SCHEME}secret field for a passwd-file line.
func HashPassword(scheme, password string) (string, error) {
	scheme = strings.ToUpper(scheme)
	var (
		h   algorithm.Hash
		err error
	)
	switch scheme {
	case "PLAIN", "CLEARTEXT":
		if strings.ContainsAny(password, ":\n") {
			return "", errors.New("a PLAIN password cannot contain ':' or a newline")
		}
		return "{" + scheme + "}" + password, nil
	case "SHA512-CRYPT":
		h, err = shacrypt.New(shacrypt.WithVariant(shacrypt.VariantSHA512), shacrypt.WithIterations(shaCryptRounds))
	case "SHA256-CRYPT":
		h, err = shacrypt.New(shacrypt.WithVariant(shacrypt.VariantSHA256), shacrypt.WithIterations(shaCryptRounds))
	case "BLF-CRYPT":
		h, err = bcrypt.New(bcrypt.WithVariant(bcrypt.VariantStandard), bcrypt.WithIterations(10))
	case "ARGON2ID":
		h, err = argon2.New(argon2.WithProfileRFC9106LowMemory())
	case "SCRAM-SHA-256":
		return "{" + scheme + "}" + hashSCRAM(password), nil
	case "CRAM-MD5":
		return "{" + scheme + "}" + hashCRAM(password), nil
	case "NTLM":
		return "{" + scheme + "}" + hashNTLM(password), nil
	default:
		return "", fmt.Errorf("unsupported scheme %q (use SHA512-CRYPT, SHA256-CRYPT, BLF-CRYPT, ARGON2ID, SCRAM-SHA-256, CRAM-MD5, NTLM or PLAIN)", scheme)
	}
	if err != nil {
		return "", err
	}
	d, err := h.Hash(password)
	if err != nil {
		return "", err
	}
	return "{" + scheme + "}" + d.Encode(), nil
}

// Passwd is a passwd-file, reloaded when it changes on disk. A line that
// does not parse is skipped and logged with its file:line, so one typo
// neither keeps stale accounts (a removed user working on) nor takes every
// other account down. A change that cannot be read (the file unreadable,
// vanished, not a file) fails closed: no account is served until a reload
// succeeds, since the accounts last read may include removed users.
type Passwd struct {
	path string
	log  *slog.Logger
	// dir is the passwd-file's directory, opened when the file is first
	// read: reloads open the file relative to it, so that a pop3d that
	// dropped its privileges needs read access to the file itself, not
	// search access to every directory above it (the demo under root's
	// home, a file under /etc/… only root may traverse).
	dir *os.File

	mu      sync.Mutex
	users   map[string]*Account
	stamp   fileStamp
	sum     [sha256.Size]byte
	racy    bool // the file changed too recently for its stamp to tell
	checked time.Time
	dummy   *Account
	// gen counts the successful loads: a change of the accounts.
	gen uint64
	// down is why the file, changed, could not be read at the last look;
	// while it is set Lookup serves no account. Its text is logged once
	// per distinct error.
	down error
}

// LoadPasswd reads a passwd-file; skipped lines are not reported.
func LoadPasswd(path string) (*Passwd, error) { return OpenPasswd(path, nil) }

// OpenPasswd reads a passwd-file and logs to log (if not nil) every line
// it skips, now and at each reload, and every reload that fails. Only a
// file that cannot be read is an error.
func OpenPasswd(path string, log *slog.Logger) (*Passwd, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Passwd{path: path, log: log}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		p.dir = d
	}
	if err := p.load(); err != nil {
		return nil, err
	}
	var err error
	p.dummy, err = DummyAccount()
	return p, err
}

// DummyAccount returns an account no one logs in to, whose hash is
// verified when a user does not exist: a failed login costs the same work
// whether or not the user exists.
func DummyAccount() (*Account, error) {
	field, err := HashPassword("SHA512-CRYPT", "pop3kit-dummy")
	if err != nil {
		return nil, err
	}
	return ParseAccount("dummy:" + field)
}

// maxPasswdSize bounds the passwd-file read into memory: 64 MiB holds
// hundreds of thousands of accounts; anything larger is a mistake (or a
// link to something that is not a passwd-file).
const maxPasswdSize = 64 << 20

// load reads the file. Bad lines are skipped and logged; only a file that
// cannot be read is an error (Lookup then serves no account).
func (p *Passwd) load() error {
	f, err := p.open()
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s: not a regular file", p.path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxPasswdSize+1))
	if err != nil {
		return fmt.Errorf("%s: %v", p.path, err)
	}
	if len(data) > maxPasswdSize {
		return fmt.Errorf("%s: larger than %d bytes", p.path, maxPasswdSize)
	}
	users := map[string]*Account{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	// A line longer than 64 KiB is no passwd-file line; the scanner stops
	// there, and the rest of the file is skipped with a logged reason.
	sc.Buffer(make([]byte, 4096), 64*1024)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimRight(sc.Text(), "\r")
		if t := strings.TrimSpace(line); t == "" || t[0] == '#' {
			continue
		}
		a, err := ParseAccount(line)
		if err != nil {
			p.log.Warn("passwd-file: line skipped", "at", p.path+":"+strconv.Itoa(n), "err", err)
			continue
		}
		if _, dup := users[a.User]; dup {
			// The first definition wins, as in Dovecot.
			p.log.Warn("passwd-file: line skipped", "at", p.path+":"+strconv.Itoa(n), "err", fmt.Sprintf("user %q defined twice", a.User))
			continue
		}
		users[a.User] = a
	}
	if err := sc.Err(); err != nil {
		p.log.Warn("passwd-file: rest of file skipped", "at", p.path+":"+strconv.Itoa(n+1), "err", err)
	}
	p.users, p.stamp, p.sum = users, stampOf(st), sha256.Sum256(data)
	p.gen++
	p.racy = p.stamp.racy(time.Now())
	return nil
}

// ReloadEvery bounds how often Lookup looks at the file, so a login flood
// does not become a stat flood.
const ReloadEvery = time.Second

// Lookup returns the account of user. A changed file is reloaded. When
// the file changed (or vanished) and cannot be read, Lookup fails closed:
// it returns no account and the error, for every user, until a reload
// succeeds — the accounts last read may hold users the change removed.
// The failure is logged once (again if the error changes), and so is the
// recovery.
func (p *Passwd) Lookup(user string) (*Account, bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.look()
	if p.down != nil {
		return nil, false, p.down
	}
	a, ok := p.users[user]
	return a, ok, nil
}

// Generation looks at the file as Lookup does (reloading a change) and
// returns how many times its accounts were loaded: a new number means
// accounts may have gone. err is set while a changed file cannot be read.
func (p *Passwd) Generation() (uint64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.look()
	return p.gen, p.down
}

// look reloads the file when it changed, at most once per ReloadEvery,
// and logs a failure (once per distinct error) and a recovery. p.mu is
// held.
func (p *Passwd) look() {
	if now := time.Now(); now.Sub(p.checked) >= ReloadEvery {
		p.checked = now
		err := p.reloadIfChanged(now)
		switch {
		case err != nil && (p.down == nil || err.Error() != p.down.Error()):
			p.log.Error("passwd-file: changed but cannot be read: refusing every login until it can", "err", err)
		case err == nil && p.down != nil:
			p.log.Info("passwd-file: readable again", "path", p.path, "accounts", len(p.users))
		}
		p.down = err
	}
}

// reloadIfChanged reloads the file if anything about it changed: device
// and inode (a new file renamed over it), size, modification time, or
// change time (cp -p and rsync -t restore the modification time, but
// nothing can restore the change time). Within the timestamps'
// granularity of the last load a same-size rewrite can keep all four, so
// then the content's hash decides, as git does for "racily clean" files.
func (p *Passwd) reloadIfChanged(now time.Time) error {
	f, err := p.open()
	if err != nil {
		return err
	}
	st, err := f.Stat()
	f.Close()
	if err != nil {
		return err
	}
	if s := stampOf(st); s != p.stamp {
		return p.load()
	}
	if !p.racy {
		return nil
	}
	data, err := p.readLimited()
	if err != nil {
		return err
	}
	if sha256.Sum256(data) != p.sum {
		return p.load()
	}
	p.racy = p.stamp.racy(now)
	return nil
}

func (p *Passwd) readLimited() ([]byte, error) {
	f, err := p.open()
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxPasswdSize+1))
}

// open opens the passwd-file, relative to its directory when that is open
// (openat: links are followed as by open, so a passwd-file that is a link
// elsewhere still works), without blocking on a FIFO.
func (p *Passwd) open() (*os.File, error) {
	if p.dir == nil {
		return os.OpenFile(p.path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	}
	fd, err := syscall.Openat(int(p.dir.Fd()), filepath.Base(p.path), syscall.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: p.path, Err: err}
	}
	return os.NewFile(uintptr(fd), p.path), nil
}

// CheckReadable opens the passwd-file as the process now is — as pop3d
// will on every reload — and reports why it cannot.
func (p *Passwd) CheckReadable() error {
	f, err := p.open()
	if err != nil {
		return err
	}
	return f.Close()
}

// Authenticate checks user and password. Unknown users cost a hash
// verification too, so the work a failure takes does not tell whether the
// user exists. (The server verifies through its bounded pool instead.)
func (p *Passwd) Authenticate(user string, password []byte) (bool, error) {
	a, ok, err := p.Lookup(user)
	if !ok {
		p.dummy.Verify(password)
		return false, err
	}
	return a.Verify(password), err
}

// Len returns the number of accounts.
func (p *Passwd) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.users)
}

// LowerASCII lower-cases the ASCII letters of name and keeps every other
// octet: the folding of UserNameCase=lower (Dovecot's %Lu), for logins and
// LMTP recipients alike. Only ASCII folds, so a UTF-8 name (RFC 6856)
// keeps its length and the names it can collide with stay what the
// passwd-file shows.
func LowerASCII(name string) string {
	for i := 0; i < len(name); i++ {
		if c := name[i]; 'A' <= c && c <= 'Z' {
			b := []byte(name)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return name
}
