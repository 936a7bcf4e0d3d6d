package server

import (
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRcptReaderFraming: only command lines change; DATA's lines up to the
// lone dot and BDAT's counted octets pass untouched, a line longer than
// the buffer passes in pieces, and malformed BDAT or RCPT lines pass as
// they are (go-smtp answers them).
func TestRcptReaderFraming(t *testing.T) {
	long := "RCPT TO:<" + strings.Repeat("x", 5000) + ">\r\n"
	in := "LHLO x\r\nRCPT TO:<bob>\r\nrcpt to:<Carol> NOTIFY=NEVER\r\nRCPT TO:<a@b>\r\nRCPT TO:<postmaster>\r\n" +
		"DATA\r\nRCPT TO:<inside>\r\n.\r\n" +
		"BDAT 16\r\nRCPT TO:<chunk>\r\n" + "BDAT\r\nBDAT x\r\n" + long + "RCPT TO:<\"q q\">\r\n"
	want := "LHLO x\r\nRCPT TO:<bob@" + localRcptDomain + ">\r\nrcpt to:<Carol@" + localRcptDomain + "> NOTIFY=NEVER\r\nRCPT TO:<a@b>\r\nRCPT TO:<postmaster>\r\n" +
		"DATA\r\nRCPT TO:<inside>\r\n.\r\n" +
		"BDAT 16\r\nRCPT TO:<chunk>\r\n" + "BDAT\r\nBDAT x\r\n" + long + "RCPT TO:<\"q q\">\r\n"
	r := &rcptReader{br: newBufReader(iotest.OneByteReader(strings.NewReader(in)))}
	got, err := io.ReadAll(r)
	require.NoError(t, err)
	assert.Equal(t, want, string(got))
	local, ok := bareRecipient("bob@" + localRcptDomain)
	assert.True(t, ok)
	assert.Equal(t, "bob", local)
}
