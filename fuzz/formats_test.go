package pop3fuzz

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"io"
	"net/textproto"
	"strings"
	"testing"

	"github.com/pop3kit/pop3kit/internal/fuzzbound"
	"github.com/pop3kit/pop3kit/internal/testenv"
	"github.com/pop3kit/pop3kit/pop3"
	"github.com/pop3kit/pop3kit/server/account"
)

// FuzzDotRoundTrip writes arbitrary message bytes through the
// LF→CRLF + dot-stuffing writer in fuzzer-chosen chunks and reads them back
// through the dot-unstuffing reader: the result is the message's CRLF form.
// For messages without CR, net/textproto's reader must agree too.
func FuzzDotRoundTrip(f *testing.F) {
	for _, s := range []string{"", "a\n", ".\n..\n", "x\r\ny", "\r", ".\r\n.", "From: a\n\n.\n"} {
		f.Add([]byte(s), uint8(3))
	}
	fuzzbound.Fuzz(f, func(t *testing.T, msg []byte, chunk uint8) {
		var wire bytes.Buffer
		d := pop3.NewDotWriter(&wire)
		step := int(chunk%16) + 1
		for i := 0; i < len(msg); i += step {
			if _, err := d.Write(msg[i:min(i+step, len(msg))]); err != nil {
				t.Fatal(err)
			}
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		if !bytes.HasSuffix(wire.Bytes(), []byte("\r\n.\r\n")) && wire.String() != ".\r\n" {
			t.Fatalf("%q: the reply does not end with CRLF . CRLF: %q", msg, wire.Bytes())
		}
		back, err := io.ReadAll(pop3.NewDotReader(bufio.NewReaderSize(bytes.NewReader(wire.Bytes()), 16)))
		if err != nil {
			t.Fatalf("%q: reading back: %v", msg, err)
		}
		if want := testenv.CRLFForm(msg); !bytes.Equal(back, want) {
			t.Fatalf("%q: wrote %q, read back %q, want %q", msg, wire.Bytes(), back, want)
		}
		if !bytes.ContainsRune(msg, '\r') {
			tp, err := io.ReadAll(textproto.NewReader(bufio.NewReader(bytes.NewReader(wire.Bytes()))).DotReader())
			if err != nil {
				t.Fatal(err)
			}
			if want := bytes.ReplaceAll(testenv.CRLFForm(msg), []byte("\r\n"), []byte("\n")); !bytes.Equal(tp, want) {
				t.Fatalf("%q: net/textproto reads %q, want %q", msg, tp, want)
			}
		}
	})
}

// FuzzSASL sends arbitrary SASL responses to pop3d: for PLAIN one
// response (as an initial response or after the empty challenge), for
// LOGIN a user name and a password after pop3d's challenges. The reply is
// +OK only for the right credentials, -ERR otherwise, never anything else.
func FuzzSASL(f *testing.F) {
	for _, s := range []string{"\x00f\x00pw", "f\x00f\x00pw", "\x00f\x00wrong", "x\x00f\x00pw", "\x00\x00", "", "\x00f"} {
		f.Add(false, []byte(s), []byte(nil), true)
	}
	f.Add(true, []byte("f"), []byte("pw"), false)
	f.Add(true, []byte("f"), []byte("pw"), true)
	f.Add(true, []byte("../f"), []byte("pw"), false)
	fuzzbound.Fuzz(f, func(t *testing.T, login bool, first, second []byte, initial bool) {
		srv, _ := fuzzServer(t, "exchange2010")
		v := srv.Variations()
		c := newPipeClient(t, srv)
		b64 := base64.StdEncoding.EncodeToString
		// send sends a line and reports whether it is within the limit that
		// applies to it; a longer one must be refused with -ERR.
		send := func(line string, max int) (string, bool) {
			r := c.Cmd(line)
			if len(line)+2 > max {
				if !strings.HasPrefix(r, "-ERR") {
					t.Fatalf("a %d-octet line (limit %d) got %q", len(line)+2, max, r)
				}
				return r, false
			}
			return r, true
		}
		var reply string
		var ok, within bool
		mech := "PLAIN"
		if login {
			mech = "LOGIN"
		}
		first64 := b64(first)
		if initial && first64 != "" {
			// An AUTH line runs to MaxAuthLineOctets (RFC 5034 §4's
			// initial response, as OAuth clients send it).
			reply, within = send("AUTH "+mech+" "+first64, max(v.MaxCommandOctets, v.MaxAuthLineOctets))
		} else {
			want := "+ "
			if login {
				want += b64([]byte("Username:"))
			}
			if r := c.Cmd("AUTH " + mech); r != want {
				t.Fatalf("AUTH %s: %q", mech, r)
			}
			reply, within = send(first64, v.MaxSASLOctets)
		}
		if !within {
			return
		}
		// The reference: names as the server folds them (UserNameCase),
		// an authorization identity equal to the user name or empty.
		if !login {
			p := bytes.Split(first, []byte{0})
			ok = len(p) == 3 && foldFor(v, string(p[1])) == "f" && string(p[2]) == "pw" &&
				(len(p[0]) == 0 || bytes.Equal(p[0], p[1]))
		} else {
			if reply != "+ "+b64([]byte("Password:")) {
				t.Fatalf("user name %q: %q", first, reply)
			}
			if reply, within = send(b64(second), v.MaxSASLOctets); !within {
				return
			}
			ok = foldFor(v, string(first)) == "f" && string(second) == "pw"
		}
		switch {
		case ok && !strings.HasPrefix(reply, "+OK maildrop has"):
			t.Fatalf("right credentials got %q", reply)
		case !ok && !strings.HasPrefix(reply, "-ERR"):
			t.Fatalf("wrong credentials %q %q got %q", first, second, reply)
		}
	})
}

// FuzzPasswdLine parses arbitrary passwd-file lines: never a panic; an
// accepted line names a user that CheckUserName accepts, and a PLAIN
// secret verifies.
func FuzzPasswdLine(f *testing.F) {
	for _, s := range []string{"alice:{PLAIN}secret", "bob:{SHA512-CRYPT}$6$rounds=5000$salt$hash", "c:{ARGON2ID}$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA",
		"d:$2y$05$abcdefghijklmnopqrstuu", "e:{PLAIN}a:1000:1000::/home/e:/bin/false:extra", "../x:{PLAIN}y", ":{PLAIN}x", "u:{MD5}x", "u:{PLAIN"} {
		f.Add(s)
	}
	fuzzbound.Fuzz(f, func(t *testing.T, line string) {
		a, err := account.ParseAccount(line)
		if err != nil {
			return
		}
		if err := account.CheckUserName(a.User); err != nil {
			t.Fatalf("%q: accepted user %q: %v", line, a.User, err)
		}
		if a.Scheme == "PLAIN" || a.Scheme == "CLEARTEXT" {
			secret, ok := a.PlainSecret()
			if !ok || !a.Verify([]byte(secret)) || a.Verify([]byte(secret+"x")) {
				t.Fatalf("%q: the PLAIN secret does not verify as itself only", line)
			}
		}
	})
}
