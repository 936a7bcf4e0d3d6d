package pop3gen

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pop3kit/pop3kit/internal/clause"
	"github.com/pop3kit/pop3kit/internal/pop3test"
	"github.com/pop3kit/pop3kit/pop3"
)

// profiles returns every profile by name.
func profiles(t testing.TB) map[string]Variations {
	t.Helper()
	m := map[string]Variations{}
	for _, n := range ProfileNames {
		v, err := Profile(n)
		require.NoError(t, err)
		m[n] = v
	}
	return m
}

const (
	rfc = "rfc1939"
	e07 = "exchange2007"
	e10 = "exchange2010"
)

var everyProfile = []string{rfc, e07, e10}

type parseCase struct {
	name     string
	line     string
	profiles []string     // nil: every profile
	want     pop3.Command // Cmd set: the command expected
	err      *pop3.Error  // or the error expected
	set      []string     // variations changed from the profile: "Name=value"
}

// parseCases covers every command of the table with accepted and rejected
// forms. Clause ids in the names tie each case to the rule it checks.
var parseCases = []parseCase{
	// RFC1939-3-KEYWORD: case-insensitive keywords, CRLF, bare LF, no line end.
	{name: "RFC1939-3-KEYWORD upper", line: "STAT\r\n", want: pop3.Command{Cmd: CmdSTAT}},
	{name: "RFC1939-3-KEYWORD lower", line: "stat\r\n", want: pop3.Command{Cmd: CmdSTAT}},
	{name: "RFC1939-3-KEYWORD mixed", line: "sTaT\r\n", want: pop3.Command{Cmd: CmdSTAT}},
	{name: "bare LF", line: "NOOP\n", want: pop3.Command{Cmd: CmdNOOP}},
	{name: "no line end", line: "NOOP", want: pop3.Command{Cmd: CmdNOOP}},
	{name: "unknown", line: "XYZZY\r\n", err: pop3test.Err("UnknownCommand")},
	{name: "unknown 4", line: "HELO\r\n", err: pop3test.Err("UnknownCommand")},
	{name: "keyword prefix", line: "STA\r\n", err: pop3test.Err("UnknownCommand")},
	{name: "keyword longer", line: "STATS\r\n", err: pop3test.Err("UnknownCommand")},
	{name: "UTF8 digit not folded", line: "UTF\x18\r\n", err: pop3test.Err("BadByte")},
	{name: "UTF8 lower", line: "utf8\r\n", want: pop3.Command{Cmd: CmdUTF8}},
	{name: "empty", line: "\r\n", err: pop3test.Err("EmptyLine")},
	{name: "NUL", line: "ST\x00T\r\n", err: pop3test.Err("BadByte")},
	{name: "8-bit keyword", line: "ST\xc4T\r\n", err: pop3test.Err("UnknownCommand")},
	{name: "CR without LF", line: "STAT\rLIST\r\n", err: pop3test.Err("BareCR")},
	{name: "lone CR at end", line: "STAT\r", err: pop3test.Err("BareCR")},
	{name: "DEL", line: "STAT\x7f\r\n", err: pop3test.Err("BadByte")},

	// USER.
	{name: "RFC1939-7-USER", line: "USER alice\r\n", want: pop3.Command{Cmd: CmdUSER, Arg1: []byte("alice")}},
	{name: "USER missing", line: "USER\r\n", err: pop3test.Err("MissingArg")},
	{name: "USER two words", line: "USER a b\r\n", err: pop3test.Err("ExtraArgs")},
	{name: "USER 8-bit where UTF8 is off", line: "USER j\xc3\xb6rg\r\n", profiles: []string{e07, e10}, err: pop3test.Err("BadByte")},
	{name: "RFC6856-2-UTF8 USER 8-bit (UTF8 USER)", line: "USER j\xc3\xb6rg\r\n", profiles: []string{rfc}, want: pop3.Command{Cmd: CmdUSER, Arg1: []byte("j\xc3\xb6rg")}},

	// PASS: V0011 keeps spaces under Exchange.
	{name: "RFC1939-7-PASS", line: "PASS secret\r\n", want: pop3.Command{Cmd: CmdPASS, Arg1: []byte("secret")}},
	{name: "V0011 PASS with spaces", line: "PASS open sesame \r\n", profiles: []string{e07, e10}, want: pop3.Command{Cmd: CmdPASS, Arg1: []byte("open sesame ")}},
	{name: "V0011 PASS with spaces rfc", line: "PASS open sesame\r\n", profiles: []string{rfc}, err: pop3test.Err("ExtraArgs")},
	{name: "PASS missing", line: "PASS\r\n", err: pop3test.Err("MissingArg")},
	{name: "PASS empty after space", line: "PASS \r\n", profiles: []string{e07, e10}, err: pop3test.Err("MissingArg")},

	// APOP.
	{name: "RFC1939-7-APOP", line: "APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n",
		want: pop3.Command{Cmd: CmdAPOP, Arg1: []byte("mrose"), Arg2: []byte("c4c9334bac560ecc979e58001b3e22fb")}},
	{name: "APOP short digest", line: "APOP mrose c4c9334bac560ecc\r\n", err: pop3test.Err("BadDigest")},
	{name: "APOP non-hex digest", line: "APOP mrose z4c9334bac560ecc979e58001b3e22fb\r\n", err: pop3test.Err("BadDigest")},
	{name: "APOP no digest", line: "APOP mrose\r\n", err: pop3test.Err("MissingArg")},

	// AUTH: RFC 5034.
	{name: "RFC5034-4-AUTH", line: "AUTH PLAIN\r\n", want: pop3.Command{Cmd: CmdAUTH, Arg1: []byte("PLAIN")}},
	{name: "RFC5034-4-INITIAL", line: "AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n", want: pop3.Command{Cmd: CmdAUTH, Arg1: []byte("PLAIN"), Arg2: []byte("AGFsaWNlAHNlY3JldA==")}},
	{name: "RFC5034-4-INITIAL empty", line: "AUTH PLAIN =\r\n", want: pop3.Command{Cmd: CmdAUTH, Arg1: []byte("PLAIN"), Arg2: []byte("=")}},
	{name: "AUTH bad base64", line: "AUTH PLAIN AG=FsaW\r\n", err: pop3test.Err("BadBase64")},
	{name: "AUTH bad mechanism", line: "AUTH PL/AIN\r\n", err: pop3test.Err("BadMechanism")},
	{name: "AUTH mechanism too long", line: "AUTH ABCDEFGHIJKLMNOPQRSTU\r\n", err: pop3test.Err("BadMechanism")},
	{name: "MSPOP3-2.2.1 bare AUTH", line: "AUTH\r\n", profiles: []string{e07, e10}, want: pop3.Command{Cmd: CmdAUTH}},
	{name: "MSPOP3-2.2.1 AUTH SP", line: "AUTH \r\n", profiles: []string{e07, e10}, want: pop3.Command{Cmd: CmdAUTH}},
	{name: "bare AUTH rfc", line: "AUTH\r\n", profiles: []string{rfc}, err: pop3test.Err("MissingArg")},
	{name: "AUTH three args", line: "AUTH PLAIN AAAA BBBB\r\n", err: pop3test.Err("ExtraArgs")},
	{name: "AUTH initial response beyond 40 octets", line: "AUTH PLAIN " + strings.Repeat("QUFB", 11) + "\r\n", profiles: []string{rfc, e10},
		want: pop3.Command{Cmd: CmdAUTH, Arg1: []byte("PLAIN"), Arg2: []byte(strings.Repeat("QUFB", 11))}},

	// No-argument commands.
	{name: "RFC2595-4-STLS", line: "STLS\r\n", want: pop3.Command{Cmd: CmdSTLS}},
	{name: "RFC2449-5-CAPA", line: "CAPA\r\n", want: pop3.Command{Cmd: CmdCAPA}},
	{name: "CAPA with argument", line: "CAPA x\r\n", profiles: []string{e07, e10}, err: pop3test.Err("ExtraArgs")},
	{name: "RFC6856-2-UTF8", line: "UTF8\r\n", want: pop3.Command{Cmd: CmdUTF8}},
	{name: "RFC1939-4-QUIT", line: "QUIT\r\n", want: pop3.Command{Cmd: CmdQUIT}},
	{name: "RFC1939-5-STAT", line: "STAT\r\n", want: pop3.Command{Cmd: CmdSTAT}},
	{name: "STAT with argument", line: "STAT 1\r\n", profiles: []string{e07, e10}, err: pop3test.Err("ExtraArgs")},

	// RFC1122-1.2.2 IgnoreExtraArgs: CAPA, NOOP, STAT and RSET drop
	// arguments in rfc1939; QUIT, STLS and UTF8 never do.
	{name: "RFC1122-1.2.2 IgnoreExtraArgs CAPA extra", line: "CAPA extra\r\n", profiles: []string{rfc}, want: pop3.Command{Cmd: CmdCAPA}},
	{name: "RFC1122-1.2.2 IgnoreExtraArgs NOOP extra", line: "NOOP extra\r\n", profiles: []string{rfc}, want: pop3.Command{Cmd: CmdNOOP}},
	{name: "RFC1122-1.2.2 IgnoreExtraArgs STAT two words", line: "STAT 1 two\r\n", profiles: []string{rfc}, want: pop3.Command{Cmd: CmdSTAT}},
	{name: "RFC1122-1.2.2 IgnoreExtraArgs RSET extra", line: "RSET extra\r\n", profiles: []string{rfc}, want: pop3.Command{Cmd: CmdRSET}},
	{name: "RFC1122-1.2.2 IgnoreExtraArgs NOOP extra off", line: "NOOP extra\r\n", profiles: []string{e07, e10}, err: pop3test.Err("ExtraArgs")},
	{name: "RFC1122-1.2.2 IgnoreExtraArgs NOOP extra set off", line: "NOOP extra\r\n", profiles: []string{rfc}, set: []string{"IgnoreExtraArgs=false"}, err: pop3test.Err("ExtraArgs")},
	{name: "RFC1122-1.2.2 IgnoreExtraArgs octets still checked", line: "NOOP ex\x01tra\r\n", profiles: []string{rfc}, err: pop3test.Err("BadByte")},
	{name: "RFC1122-1.2.2 IgnoreExtraArgs 8-bit still checked", line: "NOOP \xc3\xa9\r\n", profiles: []string{rfc}, err: pop3test.Err("BadByte")},
	{name: "RFC1122-1.2.2 IgnoreExtraArgs separator still checked", line: "NOOP\textra\r\n", profiles: []string{rfc}, err: pop3test.Err("BadSeparator")},
	{name: "RFC1122-1.2.2 IgnoreExtraArgs QUIT extra refused", line: "QUIT extra\r\n", err: pop3test.Err("ExtraArgs")},
	{name: "RFC1122-1.2.2 IgnoreExtraArgs STLS extra refused", line: "STLS extra\r\n", err: pop3test.Err("ExtraArgs")},
	{name: "RFC1122-1.2.2 IgnoreExtraArgs UTF8 extra refused", line: "UTF8 extra\r\n", err: pop3test.Err("ExtraArgs")},
	{name: "RFC1939-5-NOOP", line: "NOOP\r\n", want: pop3.Command{Cmd: CmdNOOP}},
	{name: "RFC1939-5-RSET", line: "RSET\r\n", want: pop3.Command{Cmd: CmdRSET}},

	// LANG.
	{name: "RFC6856-3-LANG list", line: "LANG\r\n", want: pop3.Command{Cmd: CmdLANG}},
	{name: "RFC6856-3-LANG select", line: "LANG en\r\n", want: pop3.Command{Cmd: CmdLANG, Arg1: []byte("en")}},
	{name: "LANG two", line: "LANG en de\r\n", err: pop3test.Err("ExtraArgs")},

	// Message numbers: RFC1939-5-MSGNUM.
	{name: "RFC1939-5-LIST all", line: "LIST\r\n", want: pop3.Command{Cmd: CmdLIST}},
	{name: "RFC1939-5-LIST one", line: "LIST 2\r\n", want: pop3.Command{Cmd: CmdLIST, Msg: 2}},
	{name: "RFC1939-5-RETR", line: "RETR 1\r\n", want: pop3.Command{Cmd: CmdRETR, Msg: 1}},
	{name: "RFC1939-5-DELE", line: "DELE 17\r\n", want: pop3.Command{Cmd: CmdDELE, Msg: 17}},
	{name: "RFC1939-7-UIDL all", line: "UIDL\r\n", want: pop3.Command{Cmd: CmdUIDL}},
	{name: "RFC1939-7-UIDL one", line: "UIDL 3\r\n", want: pop3.Command{Cmd: CmdUIDL, Msg: 3}},
	{name: "RFC1939-7-TOP", line: "TOP 1 10\r\n", want: pop3.Command{Cmd: CmdTOP, Msg: 1, Count: 10}},
	{name: "TOP zero lines", line: "TOP 1 0\r\n", want: pop3.Command{Cmd: CmdTOP, Msg: 1}},
	{name: "leading zeros", line: "RETR 007\r\n", want: pop3.Command{Cmd: CmdRETR, Msg: 7}},
	{name: "largest number", line: "RETR 2147483647\r\n", want: pop3.Command{Cmd: CmdRETR, Msg: 2147483647}},
	{name: "RFC1939-5-MSGNUM zero", line: "RETR 0\r\n", err: pop3test.Err("BadMsgNum")},
	{name: "RFC1939-5-MSGNUM negative", line: "RETR -1\r\n", err: pop3test.Err("BadMsgNum")},
	{name: "RFC1939-5-MSGNUM plus", line: "RETR +1\r\n", err: pop3test.Err("BadMsgNum")},
	{name: "RFC1939-5-MSGNUM hex", line: "RETR 0x1\r\n", err: pop3test.Err("BadMsgNum")},
	{name: "RFC1939-5-MSGNUM overflow", line: "RETR 2147483648\r\n", err: pop3test.Err("NumberTooLarge")},
	{name: "RFC1939-5-MSGNUM huge", line: "DELE 99999999999999999999\r\n", err: pop3test.Err("NumberTooLarge")},
	{name: "huge then letter", line: "DELE 99999999999999999999x\r\n", err: pop3test.Err("BadMsgNum")},
	{name: "RETR missing", line: "RETR\r\n", err: pop3test.Err("MissingArg")},
	{name: "RETR two", line: "RETR 1 2\r\n", err: pop3test.Err("ExtraArgs")},
	{name: "LIST zero", line: "LIST 0\r\n", err: pop3test.Err("BadMsgNum")},
	{name: "UIDL word", line: "UIDL abc\r\n", err: pop3test.Err("BadMsgNum")},
	{name: "TOP missing count", line: "TOP 1\r\n", err: pop3test.Err("MissingArg")},
	{name: "TOP negative count", line: "TOP 1 -1\r\n", err: pop3test.Err("BadCount")},
	// Found by FuzzParse (fuzz/testdata/fuzz/FuzzParse/df97364257a1c71c):
	// a 3-letter keyword and one space make 4 octets, not a 4-letter keyword.
	{name: "TOP and a space", line: "TOP ", profiles: []string{e07, e10}, err: pop3test.Err("MissingArg")},
	{name: "TOP and a space runs", line: "TOP ", profiles: []string{rfc}, err: pop3test.Err("MissingArg")},
	{name: "TOP and a space strict", line: "TOP ", profiles: []string{rfc}, set: []string{"SpaceRuns=false"}, err: pop3test.Err("BadSeparator")},
	// RFC1939-7-TOP: any count is taken; beyond 2^32-1 it saturates (the
	// whole message either way).
	{name: "RFC1939-7-TOP count 2^31", line: "TOP 1 2147483648\r\n", want: pop3.Command{Cmd: CmdTOP, Msg: 1, Count: 2147483648}},
	{name: "RFC1939-7-TOP count 2^32-1", line: "TOP 1 4294967295\r\n", want: pop3.Command{Cmd: CmdTOP, Msg: 1, Count: 4294967295}},
	{name: "RFC1939-7-TOP count 2^32 saturates", line: "TOP 1 4294967296\r\n", want: pop3.Command{Cmd: CmdTOP, Msg: 1, Count: 4294967295}},
	{name: "RFC1939-7-TOP count 2^64 saturates", line: "TOP 1 18446744073709551616\r\n", want: pop3.Command{Cmd: CmdTOP, Msg: 1, Count: 4294967295}},
	{name: "RFC1939-7-TOP count of 200 digits", line: "TOP 1 " + strings.Repeat("9", 200) + "\r\n", profiles: []string{rfc, e10}, want: pop3.Command{Cmd: CmdTOP, Msg: 1, Count: 4294967295}},
	{name: "RFC1939-7-TOP count zero-padded", line: "TOP 1 " + strings.Repeat("0", 60) + "3\r\n", profiles: []string{rfc, e10}, want: pop3.Command{Cmd: CmdTOP, Msg: 1, Count: 3}},
	{name: "RFC1939-7-TOP huge count then letter", line: "TOP 1 99999999999999999999x\r\n", err: pop3test.Err("BadCount")},
	{name: "TOP three", line: "TOP 1 2 3\r\n", err: pop3test.Err("ExtraArgs")},
	{name: "8-bit number", line: "RETR 1\xb9\r\n", err: pop3test.Err("BadByte")},

	// Separators: RFC1939-3-SPACE vs MS-2.1.1.
	{name: "RFC1939-3-SPACE double space", line: "RETR  1\r\n", profiles: []string{rfc}, set: []string{"SpaceRuns=false"}, err: pop3test.Err("BadSeparator")},
	{name: "RFC1939-3-SPACE tab", line: "RETR\t1\r\n", profiles: []string{rfc}, err: pop3test.Err("BadSeparator")},
	{name: "RFC1939-3-SPACE trailing", line: "RETR 1 \r\n", profiles: []string{rfc}, set: []string{"SpaceRuns=false"}, err: pop3test.Err("BadSeparator")},
	{name: "RFC1939-3-SPACE no-arg trailing", line: "STAT \r\n", profiles: []string{rfc}, set: []string{"SpaceRuns=false"}, err: pop3test.Err("BadSeparator")},
	// RFC1122-1.2.2 SpaceRuns: runs of SPACE and trailing SPACE, never TAB.
	{name: "RFC1122-1.2.2 SpaceRuns double space", line: "LIST  1\r\n", profiles: []string{rfc}, want: pop3.Command{Cmd: CmdLIST, Msg: 1}},
	{name: "RFC1122-1.2.2 SpaceRuns trailing", line: "STAT \r\n", profiles: []string{rfc}, want: pop3.Command{Cmd: CmdSTAT}},
	{name: "RFC1122-1.2.2 SpaceRuns trailing after argument", line: "DELE 1   \r\n", profiles: []string{rfc}, want: pop3.Command{Cmd: CmdDELE, Msg: 1}},
	{name: "RFC1122-1.2.2 SpaceRuns between TOP's numbers", line: "TOP 1  5\r\n", profiles: []string{rfc}, want: pop3.Command{Cmd: CmdTOP, Msg: 1, Count: 5}},
	{name: "RFC1122-1.2.2 SpaceRuns USER", line: "USER   bob \r\n", profiles: []string{rfc}, want: pop3.Command{Cmd: CmdUSER, Arg1: []byte("bob")}},
	{name: "RFC1122-1.2.2 SpaceRuns LIST and spaces", line: "LIST  \r\n", profiles: []string{rfc}, want: pop3.Command{Cmd: CmdLIST}},
	{name: "RFC1122-1.2.2 SpaceRuns no tab", line: "LIST 1\t\r\n", profiles: []string{rfc}, err: pop3test.Err("BadSeparator")},
	{name: "RFC1122-1.2.2 SpaceRuns no tab after spaces", line: "LIST  \t1\r\n", profiles: []string{rfc}, err: pop3test.Err("BadSeparator")},
	{name: "RFC1122-1.2.2 SpaceRuns no leading", line: " STAT\r\n", profiles: []string{rfc}, err: pop3test.Err("UnknownCommand")},
	{name: "RFC1122-1.2.2 SpaceRuns PASS keeps spaces", line: "PASS  open sesame \r\n", profiles: []string{rfc}, set: []string{"PassKeepsSpaces=true"}, want: pop3.Command{Cmd: CmdPASS, Arg1: []byte(" open sesame ")}},
	{name: "RFC1939-3-SPACE leading", line: " RETR 1\r\n", profiles: []string{rfc}, err: pop3test.Err("UnknownCommand")},
	{name: "MS-2.1.1 double space", line: "RETR  1\r\n", profiles: []string{e07, e10}, want: pop3.Command{Cmd: CmdRETR, Msg: 1}},
	{name: "MS-2.1.1 tab", line: "TOP\t1\t\t5\r\n", profiles: []string{e07, e10}, want: pop3.Command{Cmd: CmdTOP, Msg: 1, Count: 5}},
	{name: "MS-2.1.1 trailing", line: "RETR 1 \t\r\n", profiles: []string{e07, e10}, want: pop3.Command{Cmd: CmdRETR, Msg: 1}},
	{name: "MS-2.1.1 leading", line: " \tSTAT\r\n", profiles: []string{e07, e10}, want: pop3.Command{Cmd: CmdSTAT}},
	{name: "MS-2.1.1 no-arg trailing", line: "STAT \r\n", profiles: []string{e07, e10}, want: pop3.Command{Cmd: CmdSTAT}},

	// Lengths: RFC1939-3-ARG40, MS-2.1.2, E0006, E0007, RFC2449-4-CMD255.
	{name: "RFC1939-3-ARG40 40 octets", line: "USER " + strings.Repeat("a", 40) + "\r\n", want: pop3.Command{Cmd: CmdUSER, Arg1: []byte(strings.Repeat("a", 40))}},
	{name: "RFC1939-3-ARG40 41 octets", line: "USER " + strings.Repeat("a", 41) + "\r\n", profiles: []string{rfc}, set: []string{"MaxArgOctets=40"}, err: pop3test.Err("ArgTooLong")},
	{name: "RFC1939-3-ARG40 zero-padded number", line: "LIST " + strings.Repeat("0", 49) + "1\r\n", profiles: []string{rfc}, set: []string{"MaxArgOctets=40"}, err: pop3test.Err("ArgTooLong")},
	// RFC2449-4-CMD255: rfc1939 offers CAPA, so arguments run to the
	// 255-octet command: a password manager's PASS, a zero-padded number.
	{name: "RFC2449-4-CMD255 PASS of 248 octets", line: "PASS " + strings.Repeat("p", 248) + "\r\n", profiles: []string{rfc}, want: pop3.Command{Cmd: CmdPASS, Arg1: []byte(strings.Repeat("p", 248))}},
	{name: "RFC2449-4-CMD255 PASS of 249 octets", line: "PASS " + strings.Repeat("p", 249) + "\r\n", profiles: []string{rfc}, err: pop3test.Err("LineTooLong")},
	{name: "RFC2449-4-CMD255 zero-padded number", line: "LIST " + strings.Repeat("0", 49) + "1\r\n", profiles: []string{rfc, e10}, want: pop3.Command{Cmd: CmdLIST, Msg: 1}},
	{name: "MS-2.1.2 41 octets", line: "USER " + strings.Repeat("a", 41) + "\r\n", profiles: []string{e10}, want: pop3.Command{Cmd: CmdUSER, Arg1: []byte(strings.Repeat("a", 41))}},
	{name: "E0006 Exchange 2007 47 octets", line: "USER " + strings.Repeat("a", 40) + "\r\n", profiles: []string{e07}, want: pop3.Command{Cmd: CmdUSER, Arg1: []byte(strings.Repeat("a", 40))}},
	{name: "E0006 Exchange 2007 48 octets", line: "USER " + strings.Repeat("a", 41) + "\r\n", profiles: []string{e07}, err: pop3test.Err("LineTooLong")},
	{name: "RFC2449-4-CMD255 255 octets", line: "AUTH XOAUTH2 " + strings.Repeat("QUFB", 60) + "\r\n", profiles: []string{rfc, e10},
		want: pop3.Command{Cmd: CmdAUTH, Arg1: []byte("XOAUTH2"), Arg2: []byte(strings.Repeat("QUFB", 60))}},
	{name: "RFC2449-4-CMD255 256 octets", line: "USER " + strings.Repeat("a", 249) + "\r\n", profiles: []string{rfc}, err: pop3test.Err("LineTooLong")},
	// RFC5034-4-INITIAL: an AUTH line, which may carry an OAuth token as
	// its initial response, runs to MaxAuthLineOctets in every profile.
	{name: "RFC5034-4-INITIAL 2,000-octet AUTH", line: "AUTH XOAUTH2 " + strings.Repeat("QUFB", 496) + "\r\n", profiles: []string{rfc, e07, e10},
		want: pop3.Command{Cmd: CmdAUTH, Arg1: []byte("XOAUTH2"), Arg2: []byte(strings.Repeat("QUFB", 496))}},
	{name: "RFC5034-4-INITIAL lower-case auth after a SPACE", line: " auth XOAUTH2 " + strings.Repeat("QUFB", 496) + "\r\n", profiles: []string{rfc},
		set: []string{"LenientSeparators=true"}, want: pop3.Command{Cmd: CmdAUTH, Arg1: []byte("XOAUTH2"), Arg2: []byte(strings.Repeat("QUFB", 496))}},
	{name: "RFC5034-4-INITIAL past MaxAuthLineOctets", line: "AUTH XOAUTH2 " + strings.Repeat("QUFB", 3072) + "\r\n", profiles: []string{rfc, e07, e10}, err: pop3test.Err("LineTooLong")},
	{name: "RFC5034-4-INITIAL AUTHX is not AUTH", line: "AUTHX " + strings.Repeat("a", 600) + "\r\n", profiles: []string{rfc, e10}, err: pop3test.Err("LineTooLong")},
	{name: "E0007 Exchange 2010 512 octets", line: "AUTH CRAM-MD5 " + strings.Repeat("QUFB", 124) + "\r\n", profiles: []string{e10},
		want: pop3.Command{Cmd: CmdAUTH, Arg1: []byte("CRAM-MD5"), Arg2: []byte(strings.Repeat("QUFB", 124))}},
	{name: "E0007 Exchange 2010 513 octets", line: "PASS " + strings.Repeat("p", 506) + "\r\n", profiles: []string{e10}, err: pop3test.Err("LineTooLong")},
	{name: "megabyte line", line: strings.Repeat("A", 1<<20), err: pop3test.Err("LineTooLong")},
	{name: "megabyte line with LF", line: strings.Repeat("A", 1<<20) + "\n", err: pop3test.Err("LineTooLong")},
}

// TestParse checks every command of the spec table, accepted and rejected,
// under each profile it names.
func TestParse(t *testing.T) {
	clause.Covers(t,
		"E0006", "E0007", "MS-2.1.1", "MS-2.1.2", "MSPOP3-2.2.1", "RFC1122-1.2.2",
		"RFC1939-3-ARG40", "RFC1939-3-KEYWORD", "RFC1939-3-SPACE", "RFC1939-4-QUIT",
		"RFC1939-5-DELE", "RFC1939-5-LIST", "RFC1939-5-MSGNUM", "RFC1939-5-NOOP", "RFC1939-5-RETR",
		"RFC1939-5-RSET", "RFC1939-5-STAT", "RFC1939-7-APOP", "RFC1939-7-PASS", "RFC1939-7-TOP",
		"RFC1939-7-UIDL", "RFC1939-7-USER", "RFC2449-4-CMD255", "RFC2449-5-CAPA", "RFC2595-4-STLS",
		"RFC5034-4-AUTH", "RFC5034-4-INITIAL", "RFC6856-2-UTF8", "RFC6856-3-LANG", "V0011")
	ps := profiles(t)
	for _, tc := range parseCases {
		names := tc.profiles
		if names == nil {
			names = everyProfile
		}
		for _, p := range names {
			t.Run(p+"/"+tc.name, func(t *testing.T) {
				v := ps[p]
				for _, kv := range tc.set {
					name, value, _ := strings.Cut(kv, "=")
					require.NoError(t, v.Set(name, value))
				}
				var got pop3.Command
				err := got.Parse([]byte(tc.line), &v, 0)
				if tc.err != nil {
					require.Equal(t, tc.err, err, "got %v", err)
					return
				}
				require.Nil(t, err)
				assert.Equal(t, tc.want.Cmd, got.Cmd)
				assert.Equal(t, tc.want.Msg, got.Msg)
				assert.Equal(t, tc.want.Count, got.Count)
				assert.Equal(t, string(tc.want.Arg1), string(got.Arg1))
				assert.Equal(t, string(tc.want.Arg2), string(got.Arg2))
				assert.Equal(t, tc.want.Arg2 == nil, got.Arg2 == nil, "Arg2 presence")
			})
		}
	}
}

// TestParseEveryCommand makes sure the cases above name every command of
// the table, so a new row cannot go untested.
func TestParseEveryCommand(t *testing.T) {
	seen := map[pop3.Cmd]bool{}
	for _, tc := range parseCases {
		seen[tc.want.Cmd] = true
	}
	for i, c := range protocol.Commands {
		if i > 0 {
			assert.True(t, seen[pop3.Cmd(i)], "no accepted form of %s in parseCases", c.Name)
		}
	}
}

// TestParseUTF8Mode: after UTF8, arguments of USER, PASS and APOP may carry
// UTF-8 even where the UTF8 capability (and so UTF8 USER) is off
// (RFC6856-2-UTF8).
func TestParseUTF8Mode(t *testing.T) {
	clause.Covers(t, "RFC6856-2-UTF8")
	v := Exchange2010()
	var c pop3.Command
	err := c.Parse([]byte("PASS gr\xc3\xbc\xc3\x9fe\r\n"), &v, 0)
	require.Equal(t, pop3test.Err("BadByte"), err)
	err = c.Parse([]byte("PASS gr\xc3\xbc\xc3\x9fe\r\n"), &v, pop3.ModeUTF8)
	require.Nil(t, err)
	assert.Equal(t, "gr\xc3\xbc\xc3\x9fe", string(c.Arg1))
	err = c.Parse([]byte("RETR \xc3\xbc\r\n"), &v, pop3.ModeUTF8)
	require.Equal(t, pop3test.Err("BadByte"), err, "8-bit octets stay out of message numbers")
}
