package server

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/pop3kit/pop3kit/pop3gen"
)

// Config is what pop3d serve is told, by flags or by a TOML file that can
// say all of the same:
//
//	listen      = ["127.0.0.1:110"]
//	listen_tls  = ["127.0.0.1:995"]
//	tls_cert    = "/etc/pop3kit/cert.pem"
//	tls_key     = "/etc/pop3kit/key.pem"
//	mail_root   = "/var/mail/maildirs"
//	passwd      = "/etc/pop3kit/passwd"
//	profile     = "exchange2010"
//	fail_delay  = "2s"
//	login_delay = "60s"
//	expire      = "NEVER"
//	[set]
//	MaxCommandOctets = "1024"
type Config struct {
	Listen    []string          `toml:"listen"`
	ListenTLS []string          `toml:"listen_tls"`
	TLSCert   string            `toml:"tls_cert"`
	TLSKey    string            `toml:"tls_key"`
	MailRoot  string            `toml:"mail_root"`
	Passwd    string            `toml:"passwd"`
	Profile   string            `toml:"profile"`
	Set       map[string]string `toml:"set"`
	FailDelay Duration          `toml:"fail_delay"`
	// LoginDelay is the least time between two logins of a user
	// (RFC 2449 §6.5), announced in CAPA and enforced with
	// -ERR [LOGIN-DELAY]; 0 turns it off. It is kept per process.
	LoginDelay     Duration `toml:"login_delay"`
	Expire         string   `toml:"expire"`
	Hostname       string   `toml:"hostname"`
	Implementation string   `toml:"implementation"`
	// MaxSessions bounds the connections served at once; more are
	// answered -ERR [SYS/TEMP] and closed.
	MaxSessions int `toml:"max_sessions"`
	// Set order, kept so that later --set flags win over the file.
	setOrder []string
}

// Duration is a time.Duration that TOML reads from "2s".
type Duration time.Duration

// UnmarshalText reads a Go duration or a number of seconds.
func (d *Duration) UnmarshalText(b []byte) error {
	s := string(b)
	if v, err := time.ParseDuration(s); err == nil {
		*d = Duration(v)
		return nil
	}
	var secs int
	if _, err := fmt.Sscanf(s, "%d", &secs); err == nil && fmt.Sprint(secs) == s {
		*d = Duration(time.Duration(secs) * time.Second)
		return nil
	}
	return fmt.Errorf("%q is not a duration such as 2s or 500ms", s)
}

// DefaultConfig returns the defaults: the Exchange 2010 profile, a 2 s
// failed-login delay, 10,000 sessions.
func DefaultConfig() Config {
	return Config{
		Profile:        pop3gen.DefaultProfile,
		FailDelay:      Duration(2 * time.Second),
		Implementation: "pop3kit",
		MaxSessions:    10000,
	}
}

// LoadConfigFile reads a TOML file over c. Unknown keys are errors, so a
// misspelt setting cannot be silently ignored.
func LoadConfigFile(path string, c *Config) error {
	md, err := toml.DecodeFile(path, c)
	if err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		var keys []string
		for _, k := range und {
			keys = append(keys, k.String())
		}
		return fmt.Errorf("%s: unknown setting %s", path, strings.Join(keys, ", "))
	}
	for _, k := range md.Keys() {
		if len(k) == 2 && k[0] == "set" {
			c.setOrder = append(c.setOrder, k[1])
		}
	}
	return nil
}

// AddSet records a --set KEY=VALUE option; it wins over the file.
func (c *Config) AddSet(kv string) error {
	k, v, ok := strings.Cut(kv, "=")
	if !ok || k == "" {
		return fmt.Errorf("--set %q: want KEY=VALUE", kv)
	}
	if c.Set == nil {
		c.Set = map[string]string{}
	}
	c.Set[k] = v
	c.setOrder = append(c.setOrder, k)
	return nil
}

// Variations returns the profile with the set variations applied, or an
// error that names the bad profile, key or value.
func (c *Config) Variations() (pop3gen.Variations, error) {
	v, err := pop3gen.Profile(c.Profile)
	if err != nil {
		return v, fmt.Errorf("profile: %v", err)
	}
	seen := map[string]bool{}
	keys := append([]string(nil), c.setOrder...)
	for k := range c.Set { // keys set programmatically, without order
		keys = append(keys, k)
	}
	for _, k := range keys {
		if seen[k] {
			continue
		}
		seen[k] = true
		if err := v.Set(k, c.Set[k]); err != nil {
			return v, fmt.Errorf("set: %v", err)
		}
	}
	return v, nil
}

// Check reports the first problem with the configuration.
func (c *Config) Check() error {
	if len(c.Listen)+len(c.ListenTLS) == 0 {
		return errors.New("nothing to listen on: give --listen or --listen-tls")
	}
	if len(c.ListenTLS) > 0 && (c.TLSCert == "" || c.TLSKey == "") {
		return errors.New("--listen-tls needs --tls-cert and --tls-key")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	if c.MailRoot == "" {
		return errors.New("--mail-root is required")
	}
	if st, err := os.Stat(c.MailRoot); err != nil || !st.IsDir() {
		return fmt.Errorf("mail root %q is not a directory", c.MailRoot)
	}
	if c.Passwd == "" {
		return errors.New("--passwd is required")
	}
	if c.FailDelay < 0 || time.Duration(c.FailDelay) > time.Minute {
		return fmt.Errorf("fail delay %v is outside 0–1m", time.Duration(c.FailDelay))
	}
	if c.LoginDelay < 0 || time.Duration(c.LoginDelay) > 24*time.Hour || time.Duration(c.LoginDelay)%time.Second != 0 {
		return fmt.Errorf("login delay %v: want whole seconds from 0 to 24h", time.Duration(c.LoginDelay))
	}
	if c.MaxSessions < 1 {
		return fmt.Errorf("max sessions %d must be at least 1", c.MaxSessions)
	}
	if c.Expire != "" && c.Expire != "NEVER" {
		var days int
		if _, err := fmt.Sscanf(c.Expire, "%d", &days); err != nil || fmt.Sprint(days) != c.Expire || days < 0 {
			return fmt.Errorf("expire %q: want NEVER or a number of days (RFC 2449 §6.7)", c.Expire)
		}
	}
	abs, err := filepath.Abs(c.MailRoot)
	if err != nil {
		return err
	}
	c.MailRoot = abs
	_, err = c.Variations()
	return err
}
