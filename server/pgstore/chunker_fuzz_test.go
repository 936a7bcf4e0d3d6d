package pgstore

import (
	"bytes"
	"testing"
	"testing/iotest"

	"github.com/pop3kit/pop3kit/internal/fuzzbound"
	"github.com/stretchr/testify/require"
)

// FuzzChunker: a message stored as rows of chunks comes back whole and in
// order, every chunk but the last full, and the sizes stored with it are
// right: the octets as stored, and the exact size of its CRLF form (each
// LF not after a CR counts two), also where a CR ends one chunk and its LF
// starts the next. The chunk size is drawn small so that inputs cross
// many chunk boundaries; the reader hands out what it has in halves.
func FuzzChunker(f *testing.F) {
	f.Add([]byte("Subject: a\r\n\r\nbody\n"), uint8(3))
	f.Add([]byte("\r\n\n\r\r\n\n"), uint8(0))
	f.Add([]byte("line\r"), uint8(4))
	f.Add([]byte{}, uint8(7))
	fuzzbound.Fuzz(f, func(t *testing.T, msg []byte, size uint8) {
		chunk := int(size)%64 + 1
		c := &chunker{r: iotest.HalfReader(bytes.NewReader(msg)), id: 7, buf: make([]byte, chunk)}
		var got []byte
		var rows int32
		for c.Next() {
			row, err := c.Values()
			require.NoError(t, err)
			require.Equal(t, int64(7), row[0])
			require.Equal(t, rows, row[1], "chunks are numbered in order from 0")
			b := row[2].([]byte)
			require.LessOrEqual(t, len(b), chunk)
			require.NotEmpty(t, b, "no empty chunk is stored")
			if len(got)+len(b) < len(msg) {
				require.Len(t, b, chunk, "only the last chunk is short")
			}
			got = append(got, b...)
			rows++
		}
		require.NoError(t, c.Err())
		require.True(t, bytes.Equal(msg, got), "the chunks are the message: %q, want %q", got, msg)
		require.Equal(t, int32((len(msg)+chunk-1)/chunk), rows)
		require.Equal(t, rows, c.seq)
		require.Equal(t, int64(len(msg)), c.n, "the storage size")
		bare := 0
		for i, b := range msg {
			if b == '\n' && (i == 0 || msg[i-1] != '\r') {
				bare++
			}
		}
		require.Equal(t, int64(bare), c.bare, "LFs without a CR before them: the exact size is n+bare")
	})
}
