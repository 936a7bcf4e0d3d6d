// Package interop holds tests that run pop3d beside other POP3 servers.
//
// TestDovecotDifferential starts a private Dovecot (Debian's
// dovecot-pop3d) and pop3d on copies of one Maildir, runs seeded random
// sessions against both in lockstep and fails on any divergence of status,
// multi-line bodies, sizes or unique-ids that is not a documented
// variation.
//
// TestDovecotSwitch runs a private Dovecot and pop3d (UIDLFormat=dovecot)
// on one Maildir in turns, with deliveries (files in new/ and Dovecot's
// LDA) and deletions by either between turns: at every switch both give
// the same UIDL listing line for line, and mpop, polling whichever serves
// with one UIDL memory, downloads every message exactly once.
//
// Without Dovecot or mpop the tests skip, except under CI=true, where
// they fail: .ci/run installs dovecot-pop3d and mpop.
package interop
