package server

import (
	"net"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/pop3kit/pop3kit/pop3gen"
)

// Replies of the connection limits. Each says which limit was reached, so
// that a user can tell a busy server from a locked maildrop.
var (
	errTooMany      = pop3gen.NewError(pop3gen.CodeSysTemp, "server is full (too many connections), try again later")
	errPreauthPerIP = pop3gen.NewError(pop3gen.CodeSysTemp, "too many connections from your address that have not logged in, try again later")
	errEvicted      = pop3gen.NewError(pop3gen.CodeSysTemp, "server is full: the oldest connection that has not logged in gives way to a new one, closing")
)

// errUserSessions is the reply to a login beyond MaxSessionsPerUser; its
// text states the limit.
func errUserSessions(max int) *pop3gen.Error {
	return pop3gen.NewError(pop3gen.CodeInUse, "too many sessions for this user (the limit is "+strconv.Itoa(max)+"), try again later")
}

// refuseTimeout bounds the write of a refusal to a connection that is not
// admitted. A fresh socket's send buffer is empty, so the write returns at
// once; the deadline only keeps the accept loop from ever waiting on it.
const refuseTimeout = 100 * time.Millisecond

// farewellTimeout bounds the last line written to an evicted connection:
// it must give its slot back promptly, whatever the client does.
const farewellTimeout = time.Second

// slot is one admitted connection: counted toward MaxSessions from
// accept, before any TLS handshake, until it ends.
type slot struct {
	c     net.Conn     // the accepted connection, for deadlines
	start time.Time    // when it was accepted, to find the oldest
	key   netip.Prefix // the address group it counts against; invalid for net.Pipe
	user  string       // the user once logged in; "" before
	// evicted is set (under Server.mu) when the slot was taken back for a
	// newcomer; the session answers errEvicted and closes.
	evicted atomic.Bool
}

// addrKey groups client addresses for MaxPreauthPerIP: an IPv4 address
// alone, an IPv6 address by its /64, the smallest block a site is given,
// so that one host cannot dodge the limit by rotating through its own
// interface identifiers.
func addrKey(a net.Addr) netip.Prefix {
	ip := remoteIP(a)
	if !ip.IsValid() {
		return netip.Prefix{}
	}
	if ip.Is4() {
		return netip.PrefixFrom(ip, 32)
	}
	p, _ := ip.Prefix(64)
	return p
}

// admit counts c toward the limits and registers it for Shutdown, or
// returns the reply that refuses it. When MaxSessions is reached the
// oldest connection that has not logged in gives way, so that clients
// that never log in cannot hold every slot; the newcomer is refused only
// when every slot is a logged-in session. The scan for the oldest is
// linear in MaxSessions and runs only when the server is full. admit adds
// the session to s.wg under s.mu, so that Shutdown's Wait cannot miss it.
func (s *Server) admit(c net.Conn) (*slot, *pop3gen.Error) {
	sl := &slot{c: c, start: time.Now(), key: addrKey(c.RemoteAddr())}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return nil, errShutdown
	}
	if sl.key.IsValid() && s.preauth[sl.key] >= s.cfg.MaxPreauthPerIP {
		return nil, errPreauthPerIP
	}
	if len(s.conns) >= s.cfg.MaxSessions {
		var oldest *slot
		for _, o := range s.conns {
			if o.user == "" && (oldest == nil || o.start.Before(oldest.start)) {
				oldest = o
			}
		}
		if oldest == nil {
			return nil, errTooMany
		}
		s.evictLocked(oldest)
	}
	s.conns[c] = sl
	if sl.key.IsValid() {
		s.preauth[sl.key]++
	}
	s.sessions.Store(int64(len(s.conns)))
	s.wg.Add(1)
	return sl, nil
}

// evictLocked takes o's slot back at once and wakes its session, which
// answers errEvicted within farewellTimeout and closes. s.mu is held.
func (s *Server) evictLocked(o *slot) {
	o.evicted.Store(true)
	s.releaseLocked(o)
	_ = o.c.SetDeadline(time.Now())
	// The evicted session logs it, outside s.mu.
}

// releaseLocked uncounts sl if it still holds its slot. s.mu is held.
func (s *Server) releaseLocked(sl *slot) {
	if s.conns[sl.c] != sl {
		return
	}
	delete(s.conns, sl.c)
	if sl.user != "" {
		if s.perUser[sl.user]--; s.perUser[sl.user] <= 0 {
			delete(s.perUser, sl.user)
		}
	} else if sl.key.IsValid() {
		if s.preauth[sl.key]--; s.preauth[sl.key] <= 0 {
			delete(s.preauth, sl.key)
		}
	}
	s.sessions.Store(int64(len(s.conns)))
}

// untrack ends sl: its slot is released and its connection closed.
func (s *Server) untrack(sl *slot) {
	s.mu.Lock()
	s.releaseLocked(sl)
	s.mu.Unlock()
	sl.c.Close()
}

// claimUser moves sl from the unauthenticated connections of its address
// to user's sessions, at the point of a successful login, or returns the
// reply that refuses the login: the user already has MaxSessionsPerUser
// sessions, or sl was evicted meanwhile. A session without a slot (none
// is made outside Serve and ServeConn) is not limited.
func (s *Server) claimUser(sl *slot, user string) *pop3gen.Error {
	if sl == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if sl.evicted.Load() || s.conns[sl.c] != sl {
		return errEvicted
	}
	if sl.user == user {
		return nil
	}
	if s.perUser[user] >= s.cfg.MaxSessionsPerUser {
		return errUserSessions(s.cfg.MaxSessionsPerUser)
	}
	if sl.key.IsValid() {
		if s.preauth[sl.key]--; s.preauth[sl.key] <= 0 {
			delete(s.preauth, sl.key)
		}
	}
	sl.user = user
	s.perUser[user]++
	return nil
}

// releaseUser undoes claimUser when the maildrop then fails to open: the
// connection is unauthenticated again and counts as such.
func (s *Server) releaseUser(sl *slot) {
	if sl == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conns[sl.c] != sl || sl.user == "" {
		return
	}
	if s.perUser[sl.user]--; s.perUser[sl.user] <= 0 {
		delete(s.perUser, sl.user)
	}
	sl.user = ""
	if sl.key.IsValid() {
		s.preauth[sl.key]++
	}
}

// refuse answers a connection that is not admitted and closes it. On the
// implicit-TLS port nothing is written: a plain-text line would be garbage
// to a TLS client, and a handshake would spend the CPU the limit saves.
func (s *Server) refuse(c net.Conn, implicit bool, e *pop3gen.Error) {
	s.log.Info("connection refused", "remote", c.RemoteAddr().String(), "why", e.Text)
	if !implicit {
		_ = c.SetWriteDeadline(time.Now().Add(refuseTimeout))
		_, _ = c.Write([]byte("-ERR [" + e.Code + "] " + e.Text + "\r\n"))
	}
	_ = c.Close()
}

// rateConn bounds how long a client may take to read what the server
// writes. A burst is everything written in reply to one batch of
// commands; it starts at startBurst. Each write must end by
//
//	burst start + grace + (octets of the burst so far, this write included) / rate
//
// so a client that reads a long RETR more slowly than rate octets a second
// (after grace) is cut off, however it spaces its reads: a deadline per
// write alone would let it take writeTimeout for every 32 KiB. No write
// may take longer than writeTimeout either. With rate 0 only the
// per-write timeout applies.
type rateConn struct {
	net.Conn
	rate     int64         // octets per second; 0: off
	grace    time.Duration // added to every burst's allowance
	perWrite time.Duration // the most any one write may take; 0: writeTimeout
	start    time.Time     // the burst's start
	sent     int64         // octets written in this burst
}

// startBurst begins a new burst: the allowance starts again from now.
func (c *rateConn) startBurst() {
	c.start, c.sent = time.Now(), 0
}

func (c *rateConn) Write(p []byte) (int, error) {
	now := time.Now()
	if c.start.IsZero() {
		c.startBurst()
	}
	per := c.perWrite
	if per <= 0 {
		per = writeTimeout
	}
	d := now.Add(per)
	if c.rate > 0 {
		c.sent += int64(len(p))
		// At most writeTimeout ahead: the product cannot overflow.
		allowance := c.grace + time.Duration(min(c.sent, c.rate*int64(writeTimeout/time.Second))*int64(time.Second)/c.rate)
		if t := c.start.Add(allowance); t.Before(d) {
			d = t
		}
	}
	_ = c.Conn.SetWriteDeadline(d)
	return c.Conn.Write(p)
}
