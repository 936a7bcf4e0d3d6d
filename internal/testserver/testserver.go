// Package testserver starts pop3d in the test's process: the
// configuration a test gives, listening on the loopback, shut down when
// the test ends. It is apart from internal/testenv because it imports
// package server, which the Maildir store's own tests (that use testenv)
// must not reach.
package testserver

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/pop3kit/pop3kit/server"
)

// Serve starts a pop3d on cfg (its Listen addresses, 127.0.0.1:0 for a
// free port), serves until the test ends, then shuts it down, and returns
// it with the addresses it listens on, in Listen's order.
func Serve(t testing.TB, cfg server.Config) (*server.Server, []net.Addr) {
	t.Helper()
	srv, err := server.New(cfg, nil)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	addrs, err := srv.Listen()
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = srv.Serve(); close(done) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		select {
		case <-done:
		case <-ctx.Done():
			t.Error("pop3d's Serve did not return after Shutdown")
		}
	})
	return srv, addrs
}
