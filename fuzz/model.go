package pop3fuzz

import (
	"github.com/pop3kit/pop3kit/pop3"
	"github.com/pop3kit/pop3kit/pop3gen"
)

// MultiLine reports whether a +OK reply to c carries lines and a "."
// (RFC 1939 §3): CAPA, RETR and TOP always; LIST and UIDL without a
// message number; LANG and AUTH without an argument (a listing).
func MultiLine(c pop3.Command) bool {
	switch c.Cmd {
	case pop3gen.CmdCAPA, pop3gen.CmdRETR, pop3gen.CmdTOP:
		return true
	case pop3gen.CmdLIST, pop3gen.CmdUIDL:
		return c.Msg == 0
	case pop3gen.CmdLANG, pop3gen.CmdAUTH:
		return c.Arg1 == nil
	}
	return false
}
