package main

import (
	"encoding"
	"flag"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/pop3kit/pop3kit/server"
)

// Every setting of pop3d is a key of the config file and a flag of pop3d
// serve with the same name (dashes for underscores): both come from one
// declaration, server.Config's fields and their toml keys, with the text
// below, so that neither can have a setting the other lacks. The README's
// settings table and the pop3d(8) man page are written from the same
// place (pop3d settings --markdown, pop3d man).

// settingUsage is each setting's flag usage (a `name` in backquotes names
// the value) and, with the default, the README's and the man page's text.
var settingUsage = map[string]string{
	"listen":                   "plain POP3 `address`, repeatable; STLS there when TLS is configured",
	"listen_tls":               "implicit-TLS POP3 `address` (RFC 8314), repeatable",
	"tls_cert":                 "TLS certificate `file` (PEM); enables STLS; Mozilla intermediate: TLS 1.2 and 1.3, ECDHE with AEAD suites only; read as root, before the switch to --user",
	"tls_key":                  "TLS key `file` (PEM); read as root, and again as root at a reload",
	"mail_root":                "mail root `dir`: Maildirs at DIR/<user>/{cur,new,tmp}",
	"passwd":                   "passwd-`file` in Dovecot's format (user:{SCHEME}secret); read again when it changes",
	"profile":                  "behaviour `profile`: rfc1939 (rfc), exchange2007, exchange2010 (exchange)",
	"set":                      "variation `KEY=VALUE`, repeatable; see pop3d profiles",
	"fail_delay":               "`delay` after a failed login, from the command's arrival; 0 turns every failure delay off, penalties included",
	"login_delay":              "least `time` between two logins of a user, announced as LOGIN-DELAY and enforced with -ERR [LOGIN-DELAY] (RFC 2449 §6.5, §8.1.1)",
	"expire":                   "EXPIRE capability: NEVER or `days` (default: the retention, or not announced)",
	"hostname":                 "host `name` for the APOP timestamp (default: the system's)",
	"implementation":           "what CAPA's IMPLEMENTATION names",
	"max_sessions":             "`connections` served at once, counted from accept; the oldest not logged in gives way (default: what the descriptor limit serves, (ulimit -n − 64) ÷ 5, at most 10000; a larger setting is warned about at start)",
	"tls_handshake_timeout":    "`time` a TLS handshake may take, implicit or after STLS",
	"max_preauth_per_ip":       "`connections` not yet logged in from one address (IPv6: one /64)",
	"max_sessions_per_user":    "logged-in `sessions` of one user",
	"min_write_rate":           "least `octets/s` a client must read a reply at, after --write-rate-grace; 0 turns it off",
	"write_rate_grace":         "`time` every reply gets on top of --min-write-rate",
	"trusted_networks":         "comma-separated `CIDR` prefixes whose connections count as secure without TLS (a local proxy's); none by default, so only TLS is secure; the demo trusts 127.0.0.0/8,::1",
	"quota":                    "`size` of every maildrop's quota, enforced at LMTP (552 5.2.2); 0: none (userdb_quota_rule per account)",
	"quota_warning":            "`percent` of the quota at which a warning message is delivered, once per crossing; 0: none",
	"retention":                "messages older than this `age` are removed by pop3d expire (e.g. 60d); 0: kept",
	"metrics":                  "serve Prometheus metrics over HTTP on `address`, e.g. 127.0.0.1:9110",
	"admin_socket":             "Unix socket `path` for pop3d who and pop3d kick (mode 0600)",
	"protocol_log_users":       "comma-separated `users` whose sessions are logged command by command (secrets as ****)",
	"protocol_log_networks":    "comma-separated `CIDR` prefixes whose sessions are logged command by command",
	"log_format":               "log `format`: text or json",
	"log_level":                "log `level`: debug, info, warn or error; debug adds every session's protocol trace",
	"drain_timeout":            "on SIGTERM, how long sessions may go on before they are cut off (nothing is removed for them)",
	"proxy_protocol_from":      "comma-separated `CIDR` prefixes of load balancers that send a PROXY protocol header (v1 or v2); required from them, not read from anyone else",
	"login_type":               "Exchange's LoginType: plain (USER/PASS anywhere), secure (only on TLS or trusted networks) or tls (no login before TLS); default: as the profile says",
	"require_tls":              "refuse USER, PASS, APOP and AUTH before TLS (STLS or the implicit-TLS port), trusted networks included",
	"user":                     "as root: the `account` to serve as after binding the ports and reading the TLS key: groups set to its group only, setgid, setuid, checked; required as root (the demo takes nobody); it must read the passwd-file and own the mail root",
	"group":                    "with --user: the `group` to serve as (default: the user's primary group)",
	"auth_workers":             "password verifications at once (default: the number of CPUs)",
	"auth_memory":              "`size` of hash memory for the verifications at once, each charged its hash's cost (default: an eighth of RAM within 65MiB–260MiB)",
	"auth_queue_timeout":       "longest `wait` for a verification slot before -ERR [SYS/TEMP], never as a wrong password",
	"max_auth_failures":        "failed logins after which a connection is closed",
	"penalties":                "failure delays that grow with the recent failures of the address (IPv6: /64) or user name, from --fail-delay up to --penalty-max",
	"penalty_max":              "longest `delay` between two checks from one address a penalty reaches; an attempt whose turn is more than twice this away is answered -ERR [SYS/TEMP] unchecked, never as a wrong password",
	"penalty_entries":          "addresses, and user names, each penalty table remembers",
	"sasl_mechanisms":          "comma-separated SASL `mechanisms` AUTH offers (default: PLAIN, LOGIN; SCRAM-SHA-256 and -PLUS under TLS; OAUTHBEARER, XOAUTH2 with --oauth-jwks)",
	"oauth_jwks":               "JWKS `file` whose public keys sign the bearer tokens OAUTHBEARER and XOAUTH2 accept (needs --oauth-issuer and --oauth-audience)",
	"oauth_issuer":             "the `iss` a bearer token must carry",
	"oauth_audience":           "a `value` a bearer token's aud must contain",
	"oauth_user_claim":         "the token `claim` naming the user (default: email, then sub; an email needs email_verified true)",
	"oauth_domains":            "comma-separated mail `domains` served here: user@domain in a token is the account user",
	"ntlm_domain":              "the NetBIOS `domain` AUTH NTLM announces and accepts (default POP3KIT); setting it offers NTLM under the Exchange profiles",
	"ntlm_allow_v1":            "accept NTLMv1 responses (fetchmail, mpop); weak: see the README",
	"gssapi_keytab":            "keytab `file` with the service principal's keys: offers AUTH GSSAPI (Kerberos V5, RFC 4752)",
	"gssapi_service_principal": "the `principal` GSSAPI accepts tickets for (default: pop/<hostname>, in the keytab's realm)",
	"gssapi_realm":             "the `realm` whose principals user@REALM log in as user (default: the service principal's)",
	"lmtp":                     "LMTP delivery `address`: host:port, or unix:/path for a socket (mode 0666)",
	"max_message_size":         "largest `size` a message delivered over LMTP may have",
}

// setting is one of server.Config's settings.
type setting struct {
	key, flag, usage string
	index            []int // the field in server.Config
	typ              reflect.Type
}

// settings lists server.Config's settings in declaration order.
func settings() []setting {
	t := reflect.TypeOf(server.Config{})
	var out []setting
	for i := range t.NumField() {
		f := t.Field(i)
		key := strings.Split(f.Tag.Get("toml"), ",")[0]
		if key == "" || key == "-" || !f.IsExported() {
			continue
		}
		out = append(out, setting{key: key, flag: strings.ReplaceAll(key, "_", "-"), usage: settingUsage[key], index: f.Index, typ: f.Type})
	}
	return out
}

// isBool reports whether s is a flag without a value (--require-tls).
func (s setting) isBool() bool { return s.typ.Kind() == reflect.Bool }

// hostDefaults are the settings whose default depends on the machine (its
// CPUs, its memory, its descriptor limit): their usage says how.
var hostDefaults = map[string]bool{"auth_workers": true, "auth_memory": true, "max_sessions": true}

// defaultText is s's default as the config file writes it, "" for none
// or one that depends on the machine.
func (s setting) defaultText() string {
	if hostDefaults[s.key] {
		return ""
	}
	v := reflect.ValueOf(server.DefaultConfig()).FieldByIndex(s.index)
	if v.IsZero() {
		return ""
	}
	return tomlValue(v.Interface())
}

// set applies the flag value raw of s to c: a list takes comma-separated
// items (and each repeat of the flag adds), a duration or a size reads
// as in the file, set adds a variation.
func (s setting) set(c *server.Config, raw string, first bool) error {
	v := reflect.ValueOf(c).Elem().FieldByIndex(s.index)
	if s.key == "set" {
		return c.AddSet(raw)
	}
	if u, ok := v.Addr().Interface().(encoding.TextUnmarshaler); ok {
		return u.UnmarshalText([]byte(raw))
	}
	switch s.typ.Kind() {
	case reflect.String:
		v.SetString(raw)
	case reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return fmt.Errorf("%q is not true or false", raw)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", raw)
		}
		v.SetInt(n)
	case reflect.Slice:
		if first {
			v.Set(reflect.MakeSlice(s.typ, 0, 1))
		}
		for _, item := range splitList(raw) {
			v.Set(reflect.Append(v, reflect.ValueOf(item)))
		}
	default:
		return fmt.Errorf("setting %s has a type flags cannot set", s.key)
	}
	return nil
}

// settingFlags are the flags of serve's settings as given, in order.
type settingFlags struct {
	byFlag map[string]setting
	given  []struct{ flag, raw string }
}

// registerSettings adds a flag for every setting to fs.
func registerSettings(fs *flag.FlagSet) *settingFlags {
	sf := &settingFlags{byFlag: map[string]setting{}}
	for _, s := range settings() {
		sf.byFlag[s.flag] = s
		usage := s.usage
		if d := s.defaultText(); d != "" && s.key != "set" {
			usage += " (default " + d + ")"
		}
		fs.Var(&settingValue{sf: sf, s: s}, s.flag, usage)
	}
	return sf
}

// apply puts the flags given over c, in the order given.
func (sf *settingFlags) apply(c *server.Config) error {
	seen := map[string]bool{}
	for _, g := range sf.given {
		s := sf.byFlag[g.flag]
		if err := s.set(c, g.raw, !seen[g.flag]); err != nil {
			return fmt.Errorf("--%s: %v", g.flag, err)
		}
		seen[g.flag] = true
	}
	return nil
}

// settingValue is the flag.Value of a setting: it checks a value as it is
// given (on a default configuration) and records it for apply.
type settingValue struct {
	sf *settingFlags
	s  setting
}

func (v *settingValue) String() string { return "" }

func (v *settingValue) IsBoolFlag() bool { return v.s.isBool() }

func (v *settingValue) Set(raw string) error {
	scratch := server.DefaultConfig()
	if err := v.s.set(&scratch, raw, true); err != nil {
		return err
	}
	v.sf.given = append(v.sf.given, struct{ flag, raw string }{v.s.flag, raw})
	return nil
}

// settingsMarkdown is the README's settings table: every setting's flag,
// key, meaning and default.
func settingsMarkdown() string {
	var b strings.Builder
	b.WriteString("| flag (config key) | meaning | default |\n|---|---|---|\n")
	for _, s := range settings() {
		fmt.Fprintf(&b, "| `--%s` (`%s`) | %s | %s |\n", s.flag, s.key, strings.ReplaceAll(plainUsage(s.usage), "|", "\\|"), code(s.defaultText()))
	}
	return b.String()
}

// plainUsage drops the backquotes that name a flag's value.
func plainUsage(u string) string { return strings.ReplaceAll(u, "`", "") }

func code(s string) string {
	if s == "" {
		return ""
	}
	return "`" + s + "`"
}

// manPage is pop3d(8) in troff's man macros, written from the settings.
func manPage() string {
	var b strings.Builder
	b.WriteString(`.TH POP3D 8 "" "pop3kit" "System Manager's Manual"
.SH NAME
pop3d \- POP3 server on Maildir or PostgreSQL
.SH SYNOPSIS
.B pop3d serve
[\fIoptions\fR]
.br
.B pop3d check \-\-config
.I file
.br
.B pop3d expire
[\-\-config \fIfile\fR] [\-\-dry\-run]
.br
.B pop3d profiles
| \fBwho\fR | \fBkick\fR \fIuser\fR | \fBuser add\fR \fIname\fR | \fBimport\fR | \fB\-\-version\fR
.SH DESCRIPTION
.B pop3d
serves POP3 (RFC 1939, with CAPA, STLS, AUTH, UTF8 and LANG) from Maildirs
and a Dovecot-style passwd-file, or from PostgreSQL, with the behaviour of
a profile: rfc1939, exchange2007 or exchange2010. Run as root, it binds its
ports and reads its TLS key, then serves as \-\-user.
.SH OPTIONS
Every option is also a key of the configuration file (\-\-config, TOML),
with underscores for dashes; options given win over the file.
.TP
.BI \-\-config " file"
the TOML configuration file.
.TP
.BI \-\-store " URL"
a PostgreSQL store (postgres://...) instead of \-\-mail\-root.
.TP
.BI \-\-demo\-dir " dir"
where the demo lives, when neither \-\-mail\-root, \-\-passwd nor \-\-config is given.
`)
	names := make([]setting, 0, 64)
	names = append(names, settings()...)
	sort.SliceStable(names, func(i, j int) bool { return names[i].flag < names[j].flag })
	for _, s := range names {
		name, usage := flag.UnquoteUsage(&flag.Flag{Name: s.flag, Usage: s.usage, Value: &settingValue{s: s}})
		if name != "" && !s.isBool() {
			fmt.Fprintf(&b, ".TP\n.BI \\-\\-%s \" %s\"\n", manEscape(s.flag), manEscape(name))
		} else {
			fmt.Fprintf(&b, ".TP\n.B \\-\\-%s\n", manEscape(s.flag))
		}
		b.WriteString(manEscape(usage) + ".")
		if d := s.defaultText(); d != "" && s.key != "set" {
			b.WriteString(" Default: " + manEscape(d) + ".")
		}
		b.WriteString("\n")
	}
	b.WriteString(`.SH SIGNALS
SIGHUP reads the configuration again (certificate, profile, limits) for new
sessions; SIGTERM drains for \-\-drain\-timeout; SIGINT stops at once.
Nothing is removed for a session that did not QUIT.
.SH FILES
.I /etc/pop3kit/pop3d.toml
.SH SEE ALSO
.BR doveadm-pw (1),
.BR systemd.socket (5)
`)
	return b.String()
}

// manEscape escapes text for troff: backslashes, dashes as \-, and every
// character beyond ASCII by its Unicode name (\[u2013]).
func manEscape(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	var b strings.Builder
	for _, r := range s {
		if r > 127 {
			fmt.Fprintf(&b, `\[u%04X]`, r)
		} else {
			b.WriteRune(r)
		}
	}
	s = b.String()
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}
