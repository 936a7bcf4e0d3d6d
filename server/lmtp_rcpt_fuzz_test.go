package server

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// FuzzRcptReader: whatever an LMTP client sends, the reader that completes
// bare recipients never panics or loses an octet: taking out what it
// inserted gives back the input exactly, and it inserts only into a line
// that starts with RCPT TO:<, outside DATA and BDAT.
func FuzzRcptReader(f *testing.F) {
	for _, s := range []string{
		"LHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<bob>\r\nDATA\r\nRCPT TO:<x>\r\n.\r\nQUIT\r\n",
		"BDAT 12\r\nRCPT TO:<y>\r\nRCPT TO:<z>\r\n",
		"RCPT TO:<" + strings.Repeat("x", 5000) + ">\r\n",
		"BDAT\r\nBDAT -1\r\nBDAT 99999999999999999999\r\n",
		"rcpt to:<Bob> NOTIFY=NEVER\nDATA\n.\n",
	} {
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, in []byte, oneByte bool) {
		if bytes.Contains(in, []byte(localRcptDomain)) {
			return // the oracle takes the domain out again
		}
		var src io.Reader = bytes.NewReader(in)
		if oneByte {
			src = iotest.OneByteReader(src)
		}
		out, err := io.ReadAll(&rcptReader{br: newBufReader(src)})
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		inserted := []byte("@" + localRcptDomain)
		if back := bytes.ReplaceAll(out, inserted, nil); !bytes.Equal(back, in) {
			t.Fatalf("octets changed:\n in %q\nout %q", in, out)
		}
		for _, line := range bytes.SplitAfter(out, []byte("\n")) {
			if bytes.Contains(line, inserted) && !bytes.HasPrefix(bytes.ToUpper(line), []byte("RCPT TO:<")) {
				t.Fatalf("a completion outside a RCPT line: %q in %q", line, out)
			}
		}
	})
}
