package server

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/pop3kit/pop3kit/pop3"
	"github.com/pop3kit/pop3kit/server/lmtp"
	"github.com/pop3kit/pop3kit/server/store"
)

// newLMTP returns the LMTP delivery (package lmtp) that s's configuration
// asks for, or nil when none is configured: into s's store, to s's users
// as logins name them, under the quotas, counted in the metrics.
func newLMTP(s *Server) (*lmtp.Server, error) {
	if s.cfg.LMTP == "" {
		return nil, nil
	}
	d, ok := s.store.(store.Deliverer)
	if !ok {
		return nil, errors.New("lmtp: the store does not take deliveries")
	}
	return lmtp.New(lmtp.Config{
		Addr: s.cfg.LMTP, Domain: s.cfg.Hostname, MaxMessageSize: int64(s.cfg.MaxMessageSize),
		Store: d, Users: s.users, LowerCase: s.v.UserNameCase == pop3.UserNameCaseLower,
		Quota: int64(s.cfg.Quota), QuotaWarning: s.cfg.QuotaWarning,
		Delivered: func(code int, octets int64) { s.metrics.delivered(code, octets) }, Log: s.log.With("proto", "lmtp"),
	})
}

// lmtpListen opens the LMTP listener, when there is one.
func (s *Server) lmtpListen() (net.Addr, error) {
	if s.lmtp == nil {
		return nil, nil
	}
	return s.lmtp.Listen()
}

// lmtpShutdown shuts the LMTP listener down, when there is one.
func (s *Server) lmtpShutdown(ctx context.Context) error {
	if s.lmtp == nil {
		return nil
	}
	return s.lmtp.Shutdown(ctx)
}

// LMTPAddr returns the LMTP listener's address, or nil when there is none.
func (s *Server) LMTPAddr() net.Addr {
	if s.lmtp == nil {
		return nil
	}
	return s.lmtp.Addr()
}

// checkLMTP is Config.Check's part for LMTP: an address that can be
// listened on, a size limit that makes sense, a store that takes mail.
func (c *Config) checkLMTP() error {
	if c.MaxMessageSize < 0 || c.MaxMessageSize > 1<<30 {
		return fmt.Errorf("max message size %d is outside 0–1GiB (0: the default, %d)", c.MaxMessageSize, lmtp.DefaultMaxMessageSize)
	}
	if c.LMTP == "" {
		return nil
	}
	if err := lmtp.CheckAddr(c.LMTP); err != nil {
		return err
	}
	if c.Store != nil {
		if _, ok := c.Store.(store.Deliverer); !ok {
			return errors.New("--lmtp: the store does not take deliveries")
		}
	}
	return nil
}
