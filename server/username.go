package server

import (
	"github.com/pop3kit/pop3kit/pop3"
	"github.com/pop3kit/pop3kit/server/account"
)

// UserName returns the name a client gave in USER, APOP or a SASL exchange
// as the server looks it up, by the UserNameCase variation: as sent
// (keep), or with the ASCII letters lower-cased (lower), as Dovecot's
// default auth_username_format %Lu does. Only ASCII folds: a UTF-8 name
// (RFC 6856) keeps its other octets, so its length and the names it can
// collide with stay what the passwd-file shows. It is the one place where
// the server normalises a name; every login path calls it.
func (h *session) UserName(name string) string {
	if h.conn.Variations().UserNameCase != pop3.UserNameCaseLower {
		return name
	}
	return account.LowerASCII(name)
}
