package server

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pop3kit/pop3kit/pop3"
	"github.com/pop3kit/pop3kit/pop3gen"
	"github.com/pop3kit/pop3kit/server/account"
	"github.com/pop3kit/pop3kit/server/lmtp"
	"github.com/pop3kit/pop3kit/server/saslmech"
	"github.com/pop3kit/pop3kit/server/store"
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
//	max_auth_failures = 3
//	auth_memory = "256MiB"
//	login_delay = "60s"
//	expire      = "NEVER"
//	user        = "pop3"
//	group       = "mail"
//	trusted_networks = ["127.0.0.1/32"]
//	require_tls = false
//	tls_handshake_timeout = "10s"
//	max_sessions = 10000
//	max_preauth_per_ip = 10
//	max_sessions_per_user = 10
//	min_write_rate = 1024
//	write_rate_grace = "10s"
//	sasl_mechanisms = ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256", "PLAIN"]
//	oauth_jwks  = "/etc/pop3kit/jwks.json"
//	oauth_issuer = "https://id.example.org"
//	oauth_audience = "pop3.example.org"
//	lmtp        = "127.0.0.1:24"
//	max_message_size = "64MiB"
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
	// MaxSessions bounds the connections served at once, counted from
	// accept (a TLS handshake included). When it is reached the oldest
	// connection that has not logged in gives way; only when every slot
	// is a logged-in session is a newcomer answered -ERR [SYS/TEMP].
	// The default is what the descriptor limit serves (DefaultMaxSessions),
	// so that a connection beyond it is refused before a login it could
	// not serve.
	MaxSessions int `toml:"max_sessions"`
	// TLSHandshakeTimeout bounds a TLS handshake, on the implicit-TLS
	// port and after STLS, so that a silent client holds its slot no
	// longer than a handshake needs, whatever the inactivity timers say.
	TLSHandshakeTimeout Duration `toml:"tls_handshake_timeout"`
	// MaxPreauthPerIP bounds the connections from one address (IPv6: one
	// /64) that have not logged in, so that one host cannot fill the
	// server with idle connections.
	MaxPreauthPerIP int `toml:"max_preauth_per_ip"`
	// MaxSessionsPerUser bounds the logged-in sessions of one user; a
	// login beyond it is answered -ERR [IN-USE] with the limit in the text.
	MaxSessionsPerUser int `toml:"max_sessions_per_user"`
	// MinWriteRate is the least rate, in octets a second, at which a
	// client must read a reply after WriteRateGrace; a slower reader is
	// cut off, so that it cannot pin a session and its buffers for hours.
	// 0 leaves only the per-write timeout of 5 minutes.
	MinWriteRate int `toml:"min_write_rate"`
	// WriteRateGrace is the time every reply gets on top of MinWriteRate,
	// for the network's latency and the client's start.
	WriteRateGrace Duration `toml:"write_rate_grace"`
	// TrustedNetworks are CIDR prefixes (or addresses) whose connections
	// count as secure without TLS (PlaintextAuth=secure), such as a
	// local proxy's. Empty: nothing but TLS is secure.
	TrustedNetworks []string `toml:"trusted_networks"`
	// Activated: the listeners come from socket activation
	// (Server.AddListener), and Listen and ListenTLS may be empty.
	Activated bool `toml:"-"`
	// Quota is every user's storage quota (MS-STANXPOP3 E0003), enforced
	// at LMTP delivery; an account's userdb_quota_rule=*:storage=SIZE
	// overrides it. 0: none. QuotaWarning is the percentage of it at
	// which a warning message is delivered, once per crossing (E0004);
	// 0: no warning.
	Quota        Bytes `toml:"quota"`
	QuotaWarning int   `toml:"quota_warning"`
	// Retention removes messages older than it, in an opt-in sweep
	// (pop3d expire, MS-STANXPOP3 E0005); EXPIRE then announces it in
	// days unless Expire says otherwise. 0: keep messages until removed.
	Retention Duration `toml:"retention"`
	// Metrics is the address of the Prometheus endpoint (cmd/pop3d
	// serves it); empty: none.
	Metrics string `toml:"metrics"`
	// AdminSocket is the Unix socket for pop3d who and pop3d kick;
	// empty: none.
	AdminSocket string `toml:"admin_socket"`
	// ProtocolLogUsers and ProtocolLogNetworks turn on a protocol log
	// (Exchange's ProtocolLogEnabled, for one user or address at a
	// time): every command and reply status line of their sessions is
	// logged, with passwords, digests and SASL payloads replaced by
	// "****". A user's log begins at the login.
	ProtocolLogUsers    []string `toml:"protocol_log_users"`
	ProtocolLogNetworks []string `toml:"protocol_log_networks"`
	// LogFormat is text (the default) or json.
	LogFormat string `toml:"log_format"`
	// LogLevel is debug, info (the default), warn or error; at debug
	// every session's protocol trace is logged too.
	LogLevel string `toml:"log_level"`
	// DrainTimeout is how long sessions may go on after SIGTERM before
	// they are cut off, nothing removed for them (cmd/pop3d).
	DrainTimeout Duration `toml:"drain_timeout"`
	// ProxyProtocolFrom are the load balancers (CIDR prefixes or
	// addresses) whose connections start with a PROXY protocol header
	// (v1 or v2) naming the client they relay; from them the header is
	// required, from anyone else it is not read. The client it names is
	// what logs, limits and TrustedNetworks see.
	ProxyProtocolFrom []string `toml:"proxy_protocol_from"`
	// LoginType is Exchange's Set-PopSettings -LoginType in pop3d's
	// terms: "plain" allows USER/PASS and plaintext SASL on any
	// connection (PlaintextAuth=always), "secure" only on secure ones —
	// TLS or trusted networks — (PlaintextAuth=secure), "tls" refuses
	// every login before TLS (RequireTLS). Empty: as the profile and
	// require_tls say. The [set] table still wins over it.
	LoginType string `toml:"login_type"`
	// RequireTLS refuses every authentication command (USER, PASS, APOP,
	// AUTH) before TLS, trusted networks notwithstanding.
	RequireTLS bool `toml:"require_tls"`
	// User and Group are the account pop3d serves as, after binding its
	// listeners and reading its TLS key as root (cmd/pop3d).
	User  string `toml:"user"`
	Group string `toml:"group"`
	// AuthWorkers bounds the password verifications running at once
	// (default: the number of CPUs, as a verification is CPU-bound).
	AuthWorkers int `toml:"auth_workers"`
	// AuthMemory bounds the hash memory of the verifications running at
	// once, each charged its hash's own cost (argon2's m); default: an
	// eighth of the machine's memory, at least one ARGON2ID check.
	AuthMemory Bytes `toml:"auth_memory"`
	// AuthQueueTimeout bounds the wait for a verification slot; a login
	// still waiting then is answered -ERR [SYS/TEMP] and counts as failed.
	AuthQueueTimeout Duration `toml:"auth_queue_timeout"`
	// MaxAuthFailures is the number of failed logins after which a
	// connection is answered -ERR and closed.
	MaxAuthFailures int `toml:"max_auth_failures"`
	// Penalties turns on growing failure delays per address (IPv6: /64)
	// and per user name: FailDelay doubled with each recent failure, up to
	// PenaltyMax (with the defaults Dovecot's 2, 4, 8, 15 s). A FailDelay
	// of 0 turns them off too.
	Penalties bool `toml:"penalties"`
	// PenaltyMax caps a penalty.
	PenaltyMax Duration `toml:"penalty_max"`
	// PenaltyEntries bounds each penalty table (addresses, user names);
	// the entry with the oldest failure gives way.
	PenaltyEntries int `toml:"penalty_entries"`
	// SASLMechanisms lists the SASL mechanisms offered (saslmech.Names
	// lists them); nil: PLAIN and LOGIN, SCRAM-SHA-256
	// and -PLUS on TLS connections, OAUTHBEARER and XOAUTH2 when tokens
	// can be checked, NTLM under the Exchange profiles once NTLMDomain
	// is set. Each is offered only where it can work: PLAIN, LOGIN and
	// the bearer tokens where PlaintextAuth allows, -PLUS under TLS.
	SASLMechanisms []string `toml:"sasl_mechanisms"`
	// OAuthJWKS is a JWKS file (RFC 7517) whose keys sign the bearer
	// tokens OAUTHBEARER and XOAUTH2 accept; OAuthIssuer and
	// OAuthAudience are the iss and aud a token must carry, and
	// OAuthUserClaim the claim naming its user (default: email, then sub;
	// an email must come with email_verified true). OAuthDomains are the
	// mail domains the site serves: alice@example.org in a token is the
	// account alice when example.org is one of them.
	OAuthJWKS      string   `toml:"oauth_jwks"`
	OAuthIssuer    string   `toml:"oauth_issuer"`
	OAuthAudience  string   `toml:"oauth_audience"`
	OAuthUserClaim string   `toml:"oauth_user_claim"`
	OAuthDomains   []string `toml:"oauth_domains"`
	// NTLMDomain is the NetBIOS domain AUTH NTLM announces (default
	// POP3KIT); setting it puts NTLM in the Exchange profiles' default
	// offer. An AUTHENTICATE's domain field, or a DOMAIN\user or
	// user@DOMAIN user name, must be empty or this (in any case); the
	// user is the name without it. NTLMAllowV1 accepts NTLMv1
	// responses, which a captured exchange lets anyone crack: off.
	NTLMDomain  string `toml:"ntlm_domain"`
	NTLMAllowV1 bool   `toml:"ntlm_allow_v1"`
	// TokenVerifier checks bearer tokens; nil: the JWKS verifier Check
	// builds from OAuthJWKS, if any.
	TokenVerifier saslmech.TokenVerifier `toml:"-"`
	// GSSAPIKeytab is the keytab holding the service principal's keys
	// (AUTH GSSAPI, RFC 4752); empty: GSSAPI is not offered.
	// GSSAPIServicePrincipal is that principal (default pop/<hostname>,
	// the realm the keytab's), and GSSAPIRealm the realm whose
	// principals user@REALM log in as user (default the service's).
	GSSAPIKeytab           string `toml:"gssapi_keytab"`
	GSSAPIServicePrincipal string `toml:"gssapi_service_principal"`
	GSSAPIRealm            string `toml:"gssapi_realm"`
	// sasl configures the mechanisms, as Check builds it from the
	// settings above (with GSSAPIKeytab's acceptor).
	sasl saslmech.Config
	// saslOffer is what Check computed Mechanisms from: the offer
	// without and with TLS, where plaintext is not and is allowed.
	saslOffer [4][]string
	// LMTP is the LMTP delivery listener (package server/lmtp): host:port, or
	// unix:/path for a socket; empty: none.
	LMTP string `toml:"lmtp"`
	// MaxMessageSize bounds a message delivered over LMTP (552 5.3.4
	// beyond it); 0 means lmtp.DefaultMaxMessageSize.
	MaxMessageSize Bytes `toml:"max_message_size"`
	// Store is where the maildrops live; nil: the Maildirs under
	// MailRoot. Users are the accounts; nil: the passwd-file Passwd.
	// cmd/pop3d sets both for --store postgres://….
	Store store.Store           `toml:"-"`
	Users account.Authenticator `toml:"-"`
	// TLSPEM, when set, holds the PEM certificate chain and key that
	// TLSCert and TLSKey name, read by someone who may (pop3d's
	// privileged config reader, for a reload after the switch to an
	// account that cannot read a root-only key); the files are then not
	// opened.
	TLSPEM *PEMPair `toml:"-"`
	// Set order, kept so that later --set flags win over the file.
	setOrder []string
}

// Duration is a time.Duration that TOML reads from "2s".
type Duration time.Duration

// String writes d as a config file takes it: whole days as "60d", else
// Go's form without zero units ("30s", "1m", "1h30m").
func (d Duration) String() string {
	t := time.Duration(d)
	if t > 0 && t%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(t/(24*time.Hour)), 10) + "d"
	}
	s := t.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

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
	// Days, for retention: "60d".
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n >= 0 && n <= 100000 {
			*d = Duration(time.Duration(n) * 24 * time.Hour)
			return nil
		}
	}
	return fmt.Errorf("%q is not a duration such as 2s, 500ms or 60d", s)
}

// DefaultConfig returns the defaults: the Exchange 2010 profile, a 2 s
// failed-login delay, as many sessions as the descriptor limit serves.
func DefaultConfig() Config {
	return Config{
		Profile:        pop3gen.DefaultProfile,
		FailDelay:      Duration(2 * time.Second),
		Implementation: "pop3kit",
		MaxSessions:    DefaultMaxSessions(),
		// Ten seconds is ample for a handshake over any link that can
		// carry POP3, and short against slot-holding.
		TLSHandshakeTimeout: Duration(10 * time.Second),
		// Ten: a household or office behind one NAT address logging in at
		// once, far below what fills a server.
		MaxPreauthPerIP: 10,
		// Ten: a user's devices polling at once; a client that leaks
		// sessions meets the limit long before the server's.
		MaxSessionsPerUser: 10,
		// 1 KiB/s is slower than any working link; a reader below it
		// after the grace is stalled on purpose or dead.
		MinWriteRate:   1024,
		WriteRateGrace: Duration(10 * time.Second),
		// Verification is CPU-bound: more at once than CPUs only adds
		// memory and latency.
		AuthWorkers: runtime.NumCPU(),
		AuthMemory:  Bytes(DefaultAuthMemory()),
		// Fifteen seconds: longer than a client's patience is no use, and
		// every waiter holds a connection.
		AuthQueueTimeout: Duration(15 * time.Second),
		// Three: a person mistypes once or twice; a guesser needs
		// thousands, and must now reconnect after every third.
		MaxAuthFailures: 3,
		Penalties:       true,
		PenaltyMax:      Duration(15 * time.Second),
		// 10,000 entries a table (a few MiB at most): enough to remember
		// every address of a sizeable botnet within the hour.
		PenaltyEntries: 10000,
		MaxMessageSize: lmtp.DefaultMaxMessageSize,
		QuotaWarning:   90,
		LogLevel:       "info",
		DrainTimeout:   Duration(30 * time.Second),
	}
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
	switch c.LoginType {
	case "plain":
		v.PlaintextAuth = pop3.PlaintextAuthAlways
	case "secure", "tls":
		v.PlaintextAuth = pop3.PlaintextAuthSecure
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
	if len(c.Listen)+len(c.ListenTLS) == 0 && !c.Activated {
		return errors.New("nothing to listen on: give --listen or --listen-tls")
	}
	if len(c.ListenTLS) > 0 && (c.TLSCert == "" || c.TLSKey == "") {
		return errors.New("--listen-tls needs --tls-cert and --tls-key")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	if c.Store == nil {
		if c.MailRoot == "" {
			return errors.New("--mail-root is required")
		}
		if st, err := os.Stat(c.MailRoot); err != nil || !st.IsDir() {
			return fmt.Errorf("mail root %q is not a directory", c.MailRoot)
		}
	}
	if c.Users == nil && c.Passwd == "" {
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
	if c.TLSHandshakeTimeout <= 0 || time.Duration(c.TLSHandshakeTimeout) > 5*time.Minute {
		return fmt.Errorf("TLS handshake timeout %v is outside (0, 5m]", time.Duration(c.TLSHandshakeTimeout))
	}
	if c.MaxPreauthPerIP < 1 {
		return fmt.Errorf("max unauthenticated connections per address %d must be at least 1", c.MaxPreauthPerIP)
	}
	if c.MaxSessionsPerUser < 1 {
		return fmt.Errorf("max sessions per user %d must be at least 1", c.MaxSessionsPerUser)
	}
	if c.MinWriteRate < 0 {
		return fmt.Errorf("min write rate %d must not be negative (0 turns it off)", c.MinWriteRate)
	}
	if c.WriteRateGrace < 0 || time.Duration(c.WriteRateGrace) > 5*time.Minute {
		return fmt.Errorf("write rate grace %v is outside 0–5m", time.Duration(c.WriteRateGrace))
	}
	if _, err := parseNetworks(c.TrustedNetworks); err != nil {
		return err
	}
	if c.Quota < 0 || c.QuotaWarning < 0 || c.QuotaWarning > 100 {
		return fmt.Errorf("quota %v, quota_warning %d%%: want a size and a percentage from 0 to 100", c.Quota, c.QuotaWarning)
	}
	if c.Retention < 0 || c.Retention > 0 && time.Duration(c.Retention) < 24*time.Hour {
		return fmt.Errorf("retention %v: want 0 (none) or at least a day", time.Duration(c.Retention))
	}
	if c.LogLevel != "" {
		var l slog.Level
		if err := l.UnmarshalText([]byte(c.LogLevel)); err != nil {
			return fmt.Errorf("log level %q: want debug, info, warn or error", c.LogLevel)
		}
	}
	if c.DrainTimeout < 0 || time.Duration(c.DrainTimeout) > time.Hour {
		return fmt.Errorf("drain timeout %v is outside 0–1h", time.Duration(c.DrainTimeout))
	}
	if c.LogFormat != "" && c.LogFormat != "text" && c.LogFormat != "json" {
		return fmt.Errorf("log format %q: want text or json", c.LogFormat)
	}
	if _, err := parseNetworks(c.ProtocolLogNetworks); err != nil {
		return fmt.Errorf("protocol log: %v", err)
	}
	if _, err := parseNetworks(c.ProxyProtocolFrom); err != nil {
		return fmt.Errorf("proxy protocol: %v", err)
	}
	if err := c.checkAuth(); err != nil {
		return err
	}
	if err := c.checkNTLM(); err != nil {
		return err
	}
	if err := c.checkSASL(); err != nil {
		return err
	}
	switch c.LoginType {
	case "", "plain", "secure":
	case "tls":
		c.RequireTLS = true
	default:
		return fmt.Errorf("login type %q: want plain, secure or tls", c.LoginType)
	}
	if c.RequireTLS && c.TLSCert == "" {
		return errors.New("--require-tls needs --tls-cert and --tls-key: without TLS nobody could log in")
	}
	if err := c.checkLMTP(); err != nil {
		return err
	}
	if c.Expire != "" && c.Expire != "NEVER" {
		var days int
		if _, err := fmt.Sscanf(c.Expire, "%d", &days); err != nil || fmt.Sprint(days) != c.Expire || days < 0 {
			return fmt.Errorf("expire %q: want NEVER or a number of days (RFC 2449 §6.7)", c.Expire)
		}
	}
	if c.MailRoot != "" {
		abs, err := filepath.Abs(c.MailRoot)
		if err != nil {
			return err
		}
		c.MailRoot = abs
	}
	_, err := c.Variations()
	return err
}

// PEMPair is a PEM certificate chain and its private key.
type PEMPair struct{ Cert, Key []byte }

// certificate loads the TLS certificate cfg names: from TLSPEM when set,
// else from the files.
func (c *Config) certificate() (tls.Certificate, error) {
	pem := c.TLSPEM
	if pem == nil {
		var err error
		if pem, err = ReadPEMPair(c.TLSCert, c.TLSKey); err != nil {
			return tls.Certificate{}, err
		}
	}
	return tls.X509KeyPair(pem.Cert, pem.Key)
}

// MaxSettingsFile bounds a configuration, certificate or key file: each is
// some KiB.
const MaxSettingsFile = 1 << 20

// ReadPEMPair reads a certificate chain and its key from their files (see
// ReadSettingsFile) and checks that they make a pair.
func ReadPEMPair(certFile, keyFile string) (*PEMPair, error) {
	cert, err := ReadSettingsFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("TLS certificate: %w", err)
	}
	key, err := ReadSettingsFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("TLS key: %w", err)
	}
	if _, err := tls.X509KeyPair(cert, key); err != nil {
		return nil, fmt.Errorf("TLS certificate %s and key %s: %w", certFile, keyFile, err)
	}
	return &PEMPair{Cert: cert, Key: key}, nil
}

// ReadSettingsFile reads a configuration, certificate or key file. Only a
// regular file of at most MaxSettingsFile octets is read: such files are
// often read as root, and a path that names a FIFO would hang the reader
// and one that names /dev/zero would fill its memory. Symbolic links are
// followed (certificates are commonly linked to their current version).
func ReadSettingsFile(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (%v)", path, fi.Mode().Type())
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxSettingsFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxSettingsFile {
		return nil, fmt.Errorf("%s is larger than %d octets", path, MaxSettingsFile)
	}
	return b, nil
}

// Descriptors a session may hold at once: its socket, the maildrop's
// lock (the exclusive profile), and from a command until it has idled a
// second its Maildir, the Maildir's cur/ and the message it reads. An
// idle session holds the first two.
const (
	descriptorsPerSession = 5
	// descriptorsReserved are the process's others: listeners, logs, the
	// mail root, the passwd-file, a store's connections.
	descriptorsReserved = 64
)

// DefaultMaxSessions is max_sessions unless set: the sessions the
// process's descriptor limit serves, all of them busy at once (Go raises
// the soft limit to the hard one at start), at most 10,000 and at least
// 16.
func DefaultMaxSessions() int {
	return max(16, min(10000, (descriptorLimit()-descriptorsReserved)/descriptorsPerSession))
}

// descriptorLimit is RLIMIT_NOFILE, or a large number when there is none
// (a variable for the tests).
var descriptorLimit = func() int {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) != nil || l.Cur > 1<<30 {
		return 1 << 30
	}
	return int(l.Cur)
}
