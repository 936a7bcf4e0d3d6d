package server_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pop3kit/pop3kit/server"
)

// TestReadSettingsFile: configuration, certificate and key files are read
// (often as root) only when they are regular files of a sane size. A FIFO
// is refused at once rather than hanging the reader, /dev/zero and an
// oversized file are refused rather than filling memory, a symbolic link
// to a regular file (as certificate renewers make) is followed, and a
// certificate with another certificate's key is refused before it is
// handed on. Before, the privileged config reader read each with
// os.ReadFile: a FIFO named as tls_key hung every later reload.
func TestReadSettingsFile(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, _ := testCert(t)

	link := filepath.Join(dir, "live-cert.pem")
	require.NoError(t, os.Symlink(certFile, link))
	b, err := server.ReadSettingsFile(link)
	require.NoError(t, err)
	assert.Contains(t, string(b), "BEGIN CERTIFICATE")

	fifo := filepath.Join(dir, "key.fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	done := make(chan error, 1)
	go func() { _, err := server.ReadSettingsFile(fifo); done <- err }()
	select {
	case err := <-done:
		require.Error(t, err)
		assert.Contains(t, err.Error(), "not a regular file")
	case <-time.After(10 * time.Second):
		t.Fatal("reading a FIFO hangs")
	}

	_, err = server.ReadSettingsFile("/dev/zero")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not a regular file")

	big := filepath.Join(dir, "big.pem")
	require.NoError(t, os.WriteFile(big, []byte(strings.Repeat("x", server.MaxSettingsFile+1)), 0o600))
	_, err = server.ReadSettingsFile(big)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "larger than")

	pair, err := server.ReadPEMPair(link, keyFile)
	require.NoError(t, err)
	assert.NotEmpty(t, pair.Key)
	_, err = server.ReadPEMPair(keyFile, keyFile)
	require.Error(t, err, "a key is not a certificate")
	_, err = server.ReadPEMPair(certFile, fifo)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "TLS key")
}
