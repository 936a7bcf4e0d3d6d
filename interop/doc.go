// Package interop holds tests that run pop3d beside other POP3 servers.
//
// TestDovecotDifferential starts a private Dovecot (Debian's
// dovecot-pop3d) and pop3d on copies of one Maildir, runs seeded random
// sessions against both in lockstep and fails on any divergence of status,
// multi-line bodies, sizes or unique-ids that is not a documented
// variation. Without Dovecot it skips, except under CI=true, where it
// fails: .ci/run installs dovecot-pop3d.
package interop
