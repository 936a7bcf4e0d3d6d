package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/pop3kit/pop3kit/pop3"
)

// SessionInfo is one connection as an administrator sees it (pop3d who).
type SessionInfo struct {
	User    string // "" before login
	Remote  string
	Start   time.Time
	In, Out int64 // octets on the wire so far
}

// Who lists the connections being served, oldest first.
func (s *Server) Who() []SessionInfo {
	var out []SessionInfo
	for _, c := range s.core.Conns() {
		in, o := c.Octets()
		out = append(out, SessionInfo{User: c.User(), Remote: c.RemoteAddr().String(), Start: c.Start(), In: in, Out: o})
	}
	slices.SortFunc(out, func(a, b SessionInfo) int { return a.Start.Compare(b.Start) })
	return out
}

// Kick ends every session of user at once, removing nothing (their QUIT
// never came), and returns how many there were.
func (s *Server) Kick(user string) int {
	n := 0
	for _, c := range s.core.Conns() {
		if c.User() == user {
			c.Kick()
			n++
		}
	}
	return n
}

// Drain stops accepting and lets the sessions end by themselves until ctx
// is done, then ends the rest as Shutdown does (removing nothing for
// them): what SIGTERM does.
func (s *Server) Drain(ctx context.Context) error {
	lmtp := make(chan error, 1)
	go func() { lmtp <- s.lmtpShutdown(ctx) }()
	err := s.core.Drain(ctx)
	return errors.Join(err, <-lmtp)
}

// reloadable are the settings Reload applies (by their TOML keys).
var reloadable = map[string]bool{
	"profile": true, "set": true, "login_type": true, "tls_cert": true, "tls_key": true,
	"tls_handshake_timeout": true, "max_sessions": true, "max_preauth_per_ip": true,
	"max_sessions_per_user": true, "min_write_rate": true, "write_rate_grace": true,
	"trusted_networks": true, "require_tls": true,
}

// Reload applies cfg to the sessions that start from now on, leaving
// those being served as they are: the TLS certificate (read again from
// its files), the profile and variations, the connection limits, the
// minimum write rate and the trusted networks. (The passwd-file needs no
// reload: it is read again whenever it changes.) What only a restart can
// change — listeners, the mail root, the passwd-file's path, the store,
// PROXY protocol sources, LMTP — is left as it was, and named in the
// returned list. cfg is checked first; a bad cfg changes nothing.
func (s *Server) Reload(cfg Config) (needRestart []string, err error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	cfg.fillDefaults()
	v, err := cfg.Variations()
	if err != nil {
		return nil, err
	}
	trusted, err := parseNetworks(cfg.TrustedNetworks)
	if err != nil {
		return nil, err
	}
	var tc *tls.Config
	if cfg.TLSCert != "" {
		cert, err := cfg.certificate()
		if err != nil {
			return nil, fmt.Errorf("TLS certificate: %v", err)
		}
		tc = intermediateTLS(cert)
	}
	// Every other setting that changed takes a restart: name it.
	ov, nv := reflect.ValueOf(s.cfg), reflect.ValueOf(cfg)
	for i := range ov.NumField() {
		tag := strings.Split(ov.Type().Field(i).Tag.Get("toml"), ",")[0]
		if tag == "" || tag == "-" || reloadable[tag] {
			continue
		}
		if !reflect.DeepEqual(ov.Field(i).Interface(), nv.Field(i).Interface()) {
			needRestart = append(needRestart, tag)
		}
	}
	s.core.Reload(func(c *pop3.Server) {
		c.Dialect = &v
		c.TLSConfig = tc
		c.Trusted = trusted
		c.RequireTLS = cfg.RequireTLS
		c.AllowInsecureAuth = allowInsecureAuth(v)
		c.MaxSessions = cfg.MaxSessions
		c.MaxPreauthPerAddr = cfg.MaxPreauthPerIP
		c.MaxSessionsPerUser = cfg.MaxSessionsPerUser
		c.HandshakeTimeout = time.Duration(cfg.TLSHandshakeTimeout)
		c.MinWriteRate = int64(cfg.MinWriteRate)
		c.WriteRateGrace = time.Duration(cfg.WriteRateGrace)
	})
	s.mu.Lock()
	s.v, s.tls = v, tc
	s.mu.Unlock()
	s.endRemovedSessions("reload")
	s.log.Info("reloaded", "profile", cfg.Profile, "tls", tc != nil, "max_sessions", cfg.MaxSessions, "needs_restart", needRestart)
	return needRestart, nil
}
