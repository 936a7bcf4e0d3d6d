package server

import (
	"bufio"
	"crypto/subtle"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
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
}

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
	a := &Account{User: user, Scheme: scheme, secret: secret}
	switch {
	case plainSchemes[scheme]:
	case cryptSchemes[scheme]:
		d, err := decoder.Decode(secret)
		if err != nil {
			return nil, fmt.Errorf("%s secret: %v", scheme, err)
		}
		a.digest = d
	default:
		return nil, fmt.Errorf("unsupported scheme {%s} (use PLAIN, SHA512-CRYPT, SHA256-CRYPT, BLF-CRYPT, ARGON2ID or ARGON2I)", scheme)
	}
	if secret == "" {
		return nil, errors.New("empty secret")
	}
	return a, nil
}

// Verify reports whether password is the account's. Stored hashes are
// compared by their libraries in constant time; plain secrets with
// crypto/subtle.
func (a *Account) Verify(password []byte) bool {
	if a.digest != nil {
		return a.digest.MatchBytes(password)
	}
	return subtle.ConstantTimeCompare([]byte(a.secret), password) == 1
}

// PlainSecret returns the stored password when the account keeps it in
// the clear, as APOP needs (RFC 1939 §7); accounts with a hash have none.
func (a *Account) PlainSecret() (string, bool) {
	if a.digest != nil {
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
	default:
		return "", fmt.Errorf("unsupported scheme %q (use SHA512-CRYPT, SHA256-CRYPT, BLF-CRYPT, ARGON2ID or PLAIN)", scheme)
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

// Passwd is a passwd-file, reloaded when it changes on disk.
type Passwd struct {
	path string

	mu      sync.Mutex
	users   map[string]*Account
	mtime   time.Time
	size    int64
	checked time.Time
	dummy   *Account
}

// LoadPasswd reads a passwd-file. Errors name the file and line.
func LoadPasswd(path string) (*Passwd, error) {
	p := &Passwd{path: path}
	if err := p.load(); err != nil {
		return nil, err
	}
	// dummy is verified when a user does not exist, so that a failed
	// login costs the same time whether or not the user exists.
	field, err := HashPassword("SHA512-CRYPT", "pop3kit-dummy")
	if err != nil {
		return nil, err
	}
	p.dummy, err = ParseAccount("dummy:" + field)
	return p, err
}

func (p *Passwd) load() error {
	f, err := os.Open(p.path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	users := map[string]*Account{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 4096), 64*1024)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		if t := strings.TrimSpace(line); t == "" || t[0] == '#' {
			continue
		}
		a, err := ParseAccount(line)
		if err != nil {
			return fmt.Errorf("%s:%d: %v", p.path, n, err)
		}
		if _, dup := users[a.User]; dup {
			return fmt.Errorf("%s:%d: user %q defined twice", p.path, n, a.User)
		}
		users[a.User] = a
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %v", p.path, err)
	}
	p.users, p.mtime, p.size = users, st.ModTime(), st.Size()
	return nil
}

// reloadEvery bounds how often Lookup looks at the file's modification
// time, so a login flood does not become a stat flood.
const reloadEvery = time.Second

// Lookup returns the account of user. A changed file is reloaded; a file
// that no longer parses keeps the accounts last read (and the error is
// returned so the caller can log it).
func (p *Passwd) Lookup(user string) (*Account, bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var err error
	if now := time.Now(); now.Sub(p.checked) >= reloadEvery {
		p.checked = now
		if st, serr := os.Stat(p.path); serr == nil && (!st.ModTime().Equal(p.mtime) || st.Size() != p.size) {
			err = p.load()
		}
	}
	a, ok := p.users[user]
	return a, ok, err
}

// Authenticate checks user and password. Unknown users cost a hash
// verification too, so the time a failure takes does not tell whether the
// user exists.
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
