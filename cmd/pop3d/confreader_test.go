package main

import (
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestConfReaderFetchBounded: a config reader that takes the request and
// does not answer in time (stuck on a file system that hangs, say) fails
// the fetch after confReaderWait instead of hanging the reload that
// asked, and every later fetch fails too rather than read the late reply
// as its own (a rotated key installed one reload late); a reader that
// announces an oversized reply is refused without reading it.
func TestConfReaderFetchBounded(t *testing.T) {
	defer func(w time.Duration) { confReaderWait = w }(confReaderWait)
	confReaderWait = 200 * time.Millisecond

	server, reader := net.Pipe()
	defer server.Close()
	defer reader.Close()
	go func() {
		req := make([]byte, 1)
		_, _ = reader.Read(req)
		time.Sleep(400 * time.Millisecond) // late
		_, _ = reader.Write([]byte{0, 0, 0, 2, '{', '}'})
		_, _ = reader.Read(req)
		_, _ = reader.Write([]byte{0, 0, 0, 2, '{', '}'})
	}()
	r := &confReader{conn: server}
	done := make(chan error, 1)
	go func() { _, err := r.fetch(); done <- err }()
	select {
	case err := <-done:
		require.Error(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("fetch from a silent reader hangs")
	}
	time.Sleep(500 * time.Millisecond) // the late reply has been written
	_, err := r.fetch()
	require.Error(t, err, "a late reply is never taken for a later request's")
	assert.Contains(t, err.Error(), "restart pop3d")

	server2, reader2 := net.Pipe()
	defer server2.Close()
	defer reader2.Close()
	go func() {
		req := make([]byte, 1)
		_, _ = reader2.Read(req)
		_, _ = reader2.Write([]byte{0xff, 0xff, 0xff, 0xff})
	}()
	_, err = (&confReader{conn: server2}).fetch()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "a reply of")
}
