package saslmech

import (
	"errors"

	"github.com/emersion/go-sasl"
)

// loginServer is the server side of the LOGIN mechanism
// (draft-murchison-sasl-login): "Username:" and "Password:" challenges,
// each answered with the value. It is obsolete, but Dovecot offers it and
// older clients (Outlook Express, some phones) use nothing else; go-sasl
// has only its client side.
type loginServer struct {
	step     int
	username string
	auth     func(username, password string) error
}

var _ sasl.Server = (*loginServer)(nil)

var errLoginSteps = errors.New("LOGIN: unexpected response")

func (s *loginServer) Next(response []byte) (challenge []byte, done bool, err error) {
	switch s.step {
	case 0:
		s.step = 1
		if len(response) == 0 {
			return []byte("Username:"), false, nil
		}
		fallthrough // an initial response is the user name
	case 1:
		s.username, s.step = string(response), 2
		return []byte("Password:"), false, nil
	case 2:
		s.step = 3
		return nil, true, s.auth(s.username, string(response))
	}
	return nil, true, errLoginSteps
}
