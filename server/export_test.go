package server

import (
	"github.com/pop3kit/pop3kit/internal/faultinject"
	"github.com/pop3kit/pop3kit/server/account"
)

// AuthPoolPeak returns the most memory ever charged at once to running
// password verifications, and the pool's cap, for the login-storm test.
func (s *Server) AuthPoolPeak() (peak, limit int64) { return s.auth.peak.Load(), s.auth.memCap }

// AccountCost returns what one verification of a passwd-file field is
// charged in the pool.
func AccountCost(field string) (int64, error) {
	a, err := account.ParseAccount("u:" + field)
	if err != nil {
		return 0, err
	}
	return a.Cost(), nil
}

// InjectOpenFault sets the Maildir store's fault hook until the test
// ends: f is asked before the maildrop's own files are opened.
func InjectOpenFault(t interface{ Cleanup(func()) }, f func(dir, name string) error) {
	faultinject.SetOpen(f)
	t.Cleanup(func() { faultinject.SetOpen(nil) })
}
