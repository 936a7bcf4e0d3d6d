package account

// Authenticator knows the users and their credentials: the passwd-file
// (Passwd) is one; PostgreSQL another. It is safe for concurrent use.
type Authenticator interface {
	// Lookup returns user's account. ok is false for an unknown user;
	// err means the users cannot be read now (a login then fails with
	// [SYS/TEMP], never as a wrong password).
	Lookup(user string) (a *Account, ok bool, err error)
}
