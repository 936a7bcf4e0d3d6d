package pop3

// Command is one parsed command line. Arg1 and Arg2 are sub-slices of the
// line given to Parse: they are valid only as long as that buffer is, and
// must be copied to be kept.
type Command struct {
	Cmd Cmd
	// Msg is the message-number; 0 when the argument is optional and absent.
	Msg uint32
	// Count is TOP's line count; a longer count saturates at 2^32-1 (RFC 1939 §7: the whole message).
	Count uint32
	// Arg1 is the word, secret, name, mechanism or language argument; nil when absent.
	Arg1 []byte
	// Arg2 is APOP's digest or AUTH's initial response; nil when absent.
	Arg2 []byte
}

// Parse reads one command line of dialect d into c, in the session modes
// m. The line may end in CRLF, a bare LF or nothing. Parse is total: any
// bytes give a Command or an *Error, never a panic. The Command's slices
// alias line. On an error c.Cmd may hold the command whose arguments were
// wrong. A Session parses with the dialect read once; Parse reads it on
// every call.
func (c *Command) Parse(line []byte, d Dialect, m Mode) *Error {
	lx := newLexer(d.Protocol().prepare(), d, d.Runtime())
	return lx.parse(c, line, m)
}

// lexer parses the lines of one dialect: its rows and the variations that
// change how a line is read.
type lexer struct {
	p *Protocol
	d Dialect
	v *Variations
}

func newLexer(p *Protocol, d Dialect, v *Variations) lexer { return lexer{p: p, d: d, v: v} }

// parse reads line into c. The keyword is found by the table's perfect
// hash (Protocol.Lookup), then its arguments by the row's grammar.
func (lx *lexer) parse(c *Command, line []byte, m Mode) (err *Error) {
	*c = Command{}
	v := lx.v
	limit := v.MaxCommandOctets
	if len(line) > limit-2 && v.MaxAuthLineOctets > limit && lx.long(line) {
		// Only a line longer than a command may be an AUTH line.
		limit = v.MaxAuthLineOctets
	}
	line, err = cutLine(line, limit, errLineTooLong)
	if err != nil {
		return err
	}
	o := lexOptions{Lenient: v.LenientSeparators, Runs: v.SpaceRuns, MaxArg: v.MaxArgOctets, EightBit: v.UTF8 || m&ModeUTF8 != 0}
	if line = o.TrimLeft(line); len(line) == 0 {
		return errEmptyLine
	}
	key, n := packKeyword(line)
	cmd := CmdNone
	if n != 0 {
		cmd = lx.p.Lookup(key)
	}
	if cmd == CmdNone || int(cmd) >= len(lx.p.Commands) {
		return unknownLine(line)
	}
	r := &lx.p.Commands[cmd]
	if lx.p.exact&(1<<cmd) != 0 && !equalFold(line[:n], r.Name) {
		// The packed key folds every octet; one that is not a letter
		// (the 8 of UTF8) must match as it is.
		return unknownLine(line)
	}
	c.Cmd = cmd
	rest := line[n:]
	switch r.Args {
	case NoArgs:
		if len(rest) > 0 {
			// Arguments are checked, then dropped, where the row says so.
			f := r.IgnoreArgs
			o.IgnoreExtra = f != nil && f(lx.d)
		}
		err = o.None(rest)
	case MsgNum:
		var ok bool
		if c.Msg, ok = msgNumFast(rest); !ok {
			var a []byte
			if a, err = o.One(rest, false); err == nil {
				c.Msg, err = parseMsgNum(a)
			}
		}
	case OptMsgNum:
		var ok bool
		if c.Msg, ok = msgNumFast(rest); !ok && len(rest) != 0 {
			var a []byte
			if a, err = o.Opt(rest); err == nil && a != nil {
				c.Msg, err = parseMsgNum(a)
			}
		}
	case MsgNumCount:
		var ok bool
		if c.Msg, c.Count, ok = twoNumFast(rest); !ok {
			var a, b []byte
			if a, b, err = o.Two(rest, false, false); err == nil {
				if c.Msg, err = parseMsgNum(a); err == nil {
					c.Count, err = parseCount(b)
				}
			}
		}
	case Word:
		var ok bool
		if c.Arg1, ok = o.Single(rest); !ok {
			c.Arg1, err = o.One(rest, o.EightBit)
		}
	case Secret:
		if v.PassKeepsSpaces {
			// MS-STANXPOP3 V0011: the rest of the line, spaces included.
			c.Arg1, err = o.Rest(rest, o.EightBit)
		} else {
			c.Arg1, err = o.One(rest, o.EightBit)
		}
	case NameDigest:
		if c.Arg1, c.Arg2, err = o.Two(rest, o.EightBit, false); err == nil && !validDigest(c.Arg2) {
			err = errBadDigest
		}
	case Mechanism:
		o.MaxArg = 0 // bounded by the command length only (RFC 5034 §4)
		c.Arg1, c.Arg2, err = o.Two(rest, false, true)
		switch {
		case v.AuthListing && isBlank(rest):
			// MS-POP3 §2.2.1: a bare AUTH, or "AUTH " (even where separators are strict), lists the mechanisms.
			c.Arg1, c.Arg2, err = nil, nil, nil
		case err != nil:
		case !validMechanism(c.Arg1):
			err = errBadMechanism
		case c.Arg2 != nil && !validInitial(c.Arg2):
			// RFC 5034 §4: base64, or "=" for an empty response.
			err = errBadBase64
		}
	case OptWord:
		c.Arg1, err = o.Opt(rest)
	}
	return err
}

// long reports whether line is a command whose arguments are bounded
// only by the line (AUTH's initial response, RFC 5034 §4), which may run
// to MaxAuthLineOctets rather than MaxCommandOctets.
func (lx *lexer) long(line []byte) bool {
	for _, k := range lx.p.long {
		if startsWithKeyword(line, k) {
			return true
		}
	}
	return false
}
