package probe

import (
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"

	"github.com/pop3kit/pop3kit/pop3"
	"github.com/pop3kit/pop3kit/spec"
)

// probes tell the variations they are named after.
var probes = map[string]probeFunc{
	"MaxBadCommands": maxBadCommands,
	"PassKeepsSpaces": func(ru *run) Observation {
		// PASS with a space after the password: a server that takes the
		// rest of the line as the password gets password+" ", wrong; one
		// that takes spaces after a command (SpaceRuns) drops it. It
		// costs one failed login when it tells true.
		if !ru.canLogin() {
			return notTold("the test account cannot log in")
		}
		if ru.seen["SpaceRuns"].Value != "true" {
			return notTold("the server refuses spaces after a command, so a refusal would not tell")
		}
		return ru.fresh(func(c *pop3.Client) Observation {
			if r, err := ru.cmd(c, "USER "+ru.o.User); err != nil || !r.OK() {
				return notTold("USER %s refused", ru.o.User)
			}
			r, err := ru.cmd(c, "PASS "+ru.o.Pass+" ")
			if err != nil {
				return notTold("PASS with a space after the password: %v", err)
			}
			st := status(r)
			if r.OK() {
				ru.end(c)
				return told("false", "PASS with a space after the password: %s", st)
			}
			return told("true", "PASS with a space after the password: %s (the space taken as the password's)", st)
		})
	},
	"MaxCommandOctets": maxCommandOctets,
	"APOP": func(ru *run) Observation {
		if ru.timestamp != "" {
			return told("true", "the greeting carries a timestamp, %s", ru.timestamp)
		}
		return told("false", "the greeting carries no timestamp")
	},
	"UTF8": func(ru *run) Observation { return capaTag(ru, "UTF8") },
	"LANG": func(ru *run) Observation { return capaTag(ru, "LANG") },
	"UserAlwaysOK": func(ru *run) Observation {
		// Under UserAlwaysOK USER answers +OK to any name at all; without
		// it the server may refuse names (an unknown one, as RFC 1939's
		// example does, or only one that cannot be any user's, as pop3d
		// does so that USER never tells which users exist). A name no
		// server takes as a user's tells both apart.
		return ru.fresh(func(c *pop3.Client) Observation {
			name := randomName()
			r, err := ru.cmd(c, "USER "+name)
			if err != nil {
				return notTold("USER: %v", err)
			}
			ok := r.OK()
			ru.anyName = &ok
			if !r.OK() {
				if !ru.userAccepted() {
					return notTold("USER of an unknown name: %s; without a test account USER accepts, the refusal may be of every name", status(r))
				}
				return told("false", "USER of a name no server has: %s; of the test account's: +OK", status(r))
			}
			r, err = ru.cmd(c, "USER "+impossibleName)
			if err != nil {
				return notTold("USER %s: %v", impossibleName, err)
			}
			if r.OK() {
				return told("true", "USER of any name, even %q: +OK", impossibleName)
			}
			return told("false", "USER of an unknown name: +OK; of %q, no user's: %s", impossibleName, status(r))
		})
	},
	"IgnoreExtraArgs": func(ru *run) Observation {
		if len(ru.r.Capabilities) == 0 {
			return notTold("the server has no CAPA to try it on")
		}
		return ru.fresh(func(c *pop3.Client) Observation {
			r, err := ru.cmd(c, "CAPA extra")
			if err != nil {
				return notTold("CAPA extra: %v", err)
			}
			return told(boolean(r.OK()), "CAPA extra: %s", status(r))
		})
	},
	"SpaceRuns": func(ru *run) Observation {
		return ru.fresh(func(c *pop3.Client) Observation {
			r, err := ru.cmd(c, "CAPA ")
			if err != nil {
				return notTold("CAPA with a space after it: %v", err)
			}
			if !r.OK() && !ru.hasCapa("") && len(ru.r.Capabilities) == 0 {
				return notTold("the server has no CAPA to try it on")
			}
			return told(boolean(r.OK()), "CAPA with a space after it: %s", status(r))
		})
	},
	"LenientSeparators": func(ru *run) Observation {
		user, how := ru.existingUser()
		if user == "" {
			return notTold("USER answers only for existing names, and no test account's USER is accepted")
		}
		return ru.fresh(func(c *pop3.Client) Observation {
			r, err := ru.cmd(c, "USER\t"+user)
			if err != nil {
				return notTold("USER, a TAB, %s: %v", how, err)
			}
			return told(boolean(r.OK()), "USER, a TAB, %s: %s", how, status(r))
		})
	},
	"MaxArgOctets": func(ru *run) Observation {
		// USER of an unknown name of 40, 41 and 200 octets: RFC 1939's 40
		// enforced, or no limit below the command line's; any other
		// limit is not told.
		if !ru.anyNameAccepted() {
			return notTold("only USER of an unknown name tells it, and USER refuses unknown names")
		}
		takes := func(n int) (bool, string, error) { return ru.once("USER " + strings.Repeat("a", n)) }
		ok40, _, err40 := takes(40)
		ok41, st41, err41 := takes(41)
		if err40 != nil || err41 != nil || !ok40 {
			return notTold("USER of 40 octets: %v %v", err40, err41)
		}
		if !ok41 {
			// The line of USER and 41 octets is 48: is it the line's
			// length that is refused (MaxCommandOctets 47)?
			if ru.seen["SpaceRuns"].Value != "true" {
				return notTold("USER of 41 octets %s, but the line's length may be what is refused", st41)
			}
			if lineOK, _, _ := ru.once("CAPA" + strings.Repeat(" ", 48-6)); !lineOK {
				return notTold("USER of 41 octets %s, and so is any line of 48 octets: the command line's limit", st41)
			}
			return told("40", "USER of 40 octets taken, of 41 %s", st41)
		}
		if ok, st, err := takes(200); err == nil && ok {
			return told("0", "USER of 41 and of 200 octets taken")
		} else {
			return notTold("USER of 41 octets taken, of 200 %s: a limit between them", st)
		}
	},
	"AuthListing": func(ru *run) Observation {
		return ru.fresh(func(c *pop3.Client) Observation {
			r, err := ru.cmd(c, "AUTH")
			if err != nil {
				return notTold("AUTH alone: %v", err)
			}
			if r.OK() {
				n, err := ru.lines(c)
				if err != nil {
					return notTold("AUTH alone: %v", err)
				}
				return told("true", "AUTH alone lists %d mechanisms", n)
			}
			return told("false", "AUTH alone: %s", status(r))
		})
	},
	"InformativeErrors": func(ru *run) Observation {
		return ru.fresh(func(c *pop3.Client) Observation {
			r, err := ru.cmd(c, "XPROBE")
			if err != nil {
				return notTold("an unknown command: %v", err)
			}
			if r.OK() {
				return notTold("an unknown command was accepted")
			}
			return told(boolean(len(strings.TrimSpace(string(r.Text))) > 0), "an unknown command: %s", status(r))
		})
	},
	"UserNameCase": func(ru *run) Observation {
		if ru.o.User == "" {
			return needLogin
		}
		other := strings.ToUpper(ru.o.User)
		if other == ru.o.User {
			return notTold("the test account's name has no lower-case letter")
		}
		if !ru.canLogin() {
			return notTold("the test account cannot log in")
		}
		return ru.fresh(func(c *pop3.Client) Observation {
			r, err := ru.login(c, other)
			if err != nil {
				return notTold("login as %s: %v", other, err)
			}
			if r.OK() {
				st := status(r)
				ru.end(c)
				return told("lower", "login as %s: %s", other, st)
			}
			return told("keep", "login as %s: %s", other, status(r))
		})
	},
	"StickyUser": func(ru *run) Observation {
		if ru.o.User == "" {
			return needLogin
		}
		return ru.fresh(func(c *pop3.Client) Observation {
			if r, err := ru.cmd(c, "USER "+ru.o.User); err != nil || !r.OK() {
				return notTold("USER %s refused", ru.o.User)
			}
			r, err := ru.cmd(c, "CAPA")
			if err != nil {
				return notTold("CAPA: %v", err)
			}
			if r.OK() {
				if _, err := ru.lines(c); err != nil {
					return notTold("CAPA: %v", err)
				}
			}
			r, err = ru.cmd(c, "PASS "+ru.o.Pass)
			if err != nil {
				return notTold("PASS after CAPA: %v", err)
			}
			st := status(r)
			if r.OK() {
				ru.end(c)
			}
			return told(boolean(r.OK()), "USER, CAPA, PASS: %s", st)
		})
	},
	"MaildropAccess": func(ru *run) Observation {
		if ru.o.User == "" {
			return needLogin
		}
		first, err := ru.dial()
		if err != nil {
			return notTold("could not connect: %v", err)
		}
		defer first.Close()
		if r, err := ru.login(first, ru.o.User); err != nil || !r.OK() {
			return notTold("the test account's login failed: %s", status(r))
		}
		return ru.fresh(func(c *pop3.Client) Observation {
			r, err := ru.login(c, ru.o.User)
			if err != nil {
				return notTold("a second login: %v", err)
			}
			st := status(r)
			switch {
			case r.OK():
				ru.end(c)
				ru.end(first)
				return told("snapshot", "a second login while the first holds the maildrop: %s", st)
			case r.HasCode(pop3.CodeInUse):
				ru.end(first)
				return told("lock", "a second login while the first holds the maildrop: %s", st)
			}
			return notTold("a second login while the first holds the maildrop: %s, which is not [IN-USE]", st)
		})
	},
	"ExactSizes": func(ru *run) Observation {
		return ru.withMail(func(c *pop3.Client, list []pop3.ListEntry) Observation {
			for _, e := range list {
				body, err := c.Retr(e.Msg)
				if err != nil {
					return notTold("RETR %d: %v", e.Msg, err)
				}
				// The body as read: the CRLF form, the dot-stuffing undone.
				n, err := io.Copy(io.Discard, body)
				if err != nil {
					return notTold("RETR %d: %v", e.Msg, err)
				}
				if n == e.Octets {
					continue
				}
				return told("false", "LIST says %d octets for message %d, RETR sends %d", e.Octets, e.Msg, n)
			}
			return told("true", "LIST's sizes are RETR's octets for %d messages", len(list))
		})
	},
	"UIDLFormat": func(ru *run) Observation {
		return ru.withMail(func(c *pop3.Client, list []pop3.ListEntry) Observation {
			uids, err := c.UIDL()
			if err != nil {
				return notTold("UIDL: %v", err)
			}
			if len(uids) == 0 {
				return notTold("UIDL listed nothing")
			}
			decimal, dovecot := true, true
			for _, u := range uids {
				decimal = decimal && decimalRe.MatchString(u.UID)
				dovecot = dovecot && dovecotRe.MatchString(u.UID)
			}
			switch {
			case decimal:
				return told("decimal", "%d unique-ids, all decimal", len(uids))
			case dovecot:
				return told("dovecot", "%d unique-ids, all %%08x%%08x (Dovecot's)", len(uids))
			}
			return notTold("unique-ids neither decimal nor Dovecot's, such as %q", uids[0].UID)
		})
	},
}

var (
	decimalRe = regexp.MustCompile(`^[1-9][0-9]*$`)
	dovecotRe = regexp.MustCompile(`^[0-9a-f]{16}$`)
)

// variationRange returns the bounds the table gives a variation.
func variationRange(name string) (lo, hi int64) {
	for _, v := range spec.POP3.Variations {
		if v.Name == name {
			return v.Min, v.Max
		}
	}
	return 0, 0
}

// maxBadCommands counts the unknown commands the server answers before it
// closes the connection, up to one more than the table's largest limit:
// a server that has not closed by then has none (0).
func maxBadCommands(ru *run) Observation {
	_, hi := variationRange("MaxBadCommands")
	return ru.fresh(func(c *pop3.Client) Observation {
		for n := int64(1); n <= hi+1; n++ {
			r, err := ru.cmd(c, "XPROBE")
			if err != nil {
				// Closed: the n-th bad command was one too many; a
				// closing -ERR before it, or none, is the same limit.
				if n == 1 || ru.ctx.Err() != nil || isTimeout(err) {
					return notTold("unknown command %d: %v", n, err)
				}
				return told(strconv.FormatInt(n-1, 10), "the connection closed at unknown command %d", n)
			}
			if r.OK() {
				return notTold("an unknown command was accepted")
			}
			if isClosing(r) {
				return told(strconv.FormatInt(n, 10), "unknown command %d was answered %s, and the connection closed", n, status(r))
			}
		}
		return told("0", "%d unknown commands, and the connection stays open", hi+1)
	})
}

// isClosing reports whether an -ERR says the server closes: pop3d and
// others say "closing" in it; the next read finds the connection gone.
func isClosing(r pop3.Reply) bool {
	return strings.Contains(strings.ToLower(string(r.Text)), "closing")
}

// maxCommandOctets finds the longest command line the server takes, CRLF
// included, by halving the table's range: CAPA followed by spaces, where
// spaces after a command are taken (SpaceRuns), so that only the line's
// length can refuse it. Each try has a connection of its own.
func maxCommandOctets(ru *run) Observation {
	if ru.seen["SpaceRuns"].Value != "true" {
		return notTold("only a line of trailing spaces measures it here, and the server refuses them")
	}
	lo, hi := variationRange("MaxCommandOctets")
	takes := func(octets int64) (bool, error) {
		ok, _, err := ru.once("CAPA" + strings.Repeat(" ", int(octets)-6))
		return ok, err
	}
	if ok, _ := takes(lo); !ok {
		return notTold("a line of %d octets, the table's least limit, was refused", lo)
	}
	if ok, _ := takes(hi + 1); ok {
		return notTold("a line of %d octets, beyond the table's largest limit, was taken", hi+1)
	}
	for lo+1 < hi+1 { // lo is taken, hi+1 is not
		mid := (lo + hi + 1) / 2
		if ok, _ := takes(mid); ok {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return told(strconv.FormatInt(lo, 10), "CAPA and spaces: %d octets with CRLF taken, %d refused", lo, lo+1)
}

// impossibleName is a name no server gives a user: a path separator, a
// colon (passwd-file fields) and a leading dot.
const impossibleName = ".probe/../x:y"

// noProbe says why a variation has no probe.
var noProbe = map[string]string{
	"PlaintextAuth":     "not probed yet: a loopback connection counts as secure on many servers",
	"UnauthTimeout":     "not probed: a server waits minutes before it logs an idle client out (RFC 1939 §3: at least 10)",
	"AuthTimeout":       "not probed: a server waits minutes before it logs an idle client out (RFC 1939 §3: at least 10)",
	"TimeoutNotice":     "not probed: it shows only when an idle client is logged out, minutes later",
	"MaxAuthLineOctets": "not probed yet",
	"MaxSASLOctets":     "not probed yet",
}

// capaTag tells a variation that is a CAPA tag before login.
func capaTag(ru *run, tag string) Observation {
	if len(ru.r.Capabilities) == 0 {
		return notTold("no CAPA")
	}
	return told(boolean(ru.hasCapa(tag)), "CAPA %s %s", map[bool]string{true: "lists", false: "does not list"}[ru.hasCapa(tag)], tag)
}

// existingUser returns a name USER accepts: the test account's, or any
// when the server accepts any.
func (ru *run) existingUser() (string, string) {
	if ru.userAccepted() {
		return ru.o.User, "the test account"
	}
	if ru.anyNameAccepted() {
		return randomName(), "an unknown name (USER takes one)"
	}
	return "", ""
}

// withMail logs in as the test account and runs f with its LIST; the
// session ends with RSET and QUIT, removing nothing.
func (ru *run) withMail(f func(c *pop3.Client, list []pop3.ListEntry) Observation) Observation {
	if ru.o.User == "" {
		return needLogin
	}
	return ru.fresh(func(c *pop3.Client) Observation {
		if r, err := ru.login(c, ru.o.User); err != nil || !r.OK() {
			return notTold("the test account's login failed: %s", status(r))
		}
		list, err := c.List()
		if err != nil {
			return notTold("LIST: %v", err)
		}
		if len(list) == 0 {
			ru.end(c)
			return notTold("the test account has no mail")
		}
		ob := f(c, list)
		ru.end(c)
		return ob
	})
}

// status is a reply's status line, for an observation's account.
func status(r pop3.Reply) string {
	s := "+OK"
	if !r.OK() {
		s = "-ERR"
	}
	if len(r.Code) > 0 {
		s += " [" + string(r.Code) + "]"
	}
	if t := strings.TrimSpace(string(r.Text)); t != "" {
		s += " " + t
	}
	return s
}

// userAccepted reports whether USER of the test account's name is
// answered +OK (asked once).
func (ru *run) userAccepted() bool {
	if ru.o.User == "" {
		return false
	}
	if ru.userOK == nil {
		ok, _, _ := ru.once("USER " + ru.o.User)
		ru.userOK = &ok
	}
	return *ru.userOK
}

// canLogin reports whether the test account logs in with USER and PASS
// (asked once).
func (ru *run) canLogin() bool {
	if ru.o.User == "" {
		return false
	}
	if ru.loginOK == nil {
		ok := false
		ru.fresh(func(c *pop3.Client) Observation {
			r, err := ru.login(c, ru.o.User)
			ok = err == nil && r.OK()
			if ok {
			}
			return Observation{}
		})
		ru.loginOK = &ok
	}
	return *ru.loginOK
}

// anyNameAccepted reports whether USER answers +OK to a name no server
// has (asked once; the UserAlwaysOK probe may have asked already).
func (ru *run) anyNameAccepted() bool {
	if ru.anyName == nil {
		ok, _, _ := ru.once("USER " + randomName())
		ru.anyName = &ok
	}
	return *ru.anyName
}

// maxLines bounds the lines of a listing the probe reads: a server
// sending without end is cut off.
const maxLines = 1000

// lines reads and counts the lines of a multi-line listing after its +OK,
// up to maxLines.
func (ru *run) lines(c *pop3.Client) (int, error) {
	for n := 0; ; n++ {
		if n > maxLines {
			return n, fmt.Errorf("a listing of more than %d lines", maxLines)
		}
		_, err := c.Reader().ReadListLine()
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// isTimeout reports whether err is a read or write that timed out.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// end ends a logged-in session so that the server lets the maildrop go at
// once (the next probe's login must not find it locked), removing
// nothing: RSET, and QUIT only when RSET was answered +OK (no message is
// marked then, so UPDATE removes none); otherwise the connection is just
// closed, which never enters UPDATE (RFC 1939 §6).
func (ru *run) end(c *pop3.Client) {
	if r, err := ru.cmd(c, "RSET"); err == nil && r.OK() {
		_, _ = ru.cmd(c, "QUIT")
	}
	c.Close()
}

// once sends one command on a connection of its own, before any login,
// and says whether it was answered +OK, with the status line as seen.
func (ru *run) once(line string) (ok bool, st string, err error) {
	c, err := ru.dial()
	if err != nil {
		return false, "", err
	}
	defer c.Close()
	r, err := ru.cmd(c, line)
	return err == nil && r.OK(), status(r), err
}
