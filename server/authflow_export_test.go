package server

// AuthVerified returns how many password verifications the server's pool
// has run, for the tests that bound how many guesses get checked.
func (s *Server) AuthVerified() int64 { return s.auth.verified.Load() }
