// Package pop3 is pop3kit's POP3 runtime: everything of a POP3 server that
// does not depend on a spec table, hand-written, tested once and imported
// by every package the generator makes from a table (pop3gen for the
// standard one).
//
// A generated package supplies the table as data: its command rows and
// keyword lookup (a Protocol), its Handler interfaces, and its Variations
// type with the profiles; a *Variations is the Dialect a Server serves.
// The runtime does the rest: the connection loop with its timers, limits,
// STLS and implicit TLS (Server, Conn), the session engine that parses a
// line by its row's grammar, checks state and guards, runs the command and
// takes the transition (Session), the answers to STAT, LIST, UIDL, RETR,
// TOP, DELE, RSET and UPDATE from a Maildrop, the SASL exchange
// (AuthHandler), the reply writers that keep every line within 512 octets
// and dot-stuff message bodies (Writer, DotWriter), and a client (Client).
//
// It imports only the standard library. A fix here reaches every server
// built on it with go get -u, without regenerating. Its table.go and
// variations.go are rendered from the standard table (spec.POP3): the
// limits, response codes and errors it sends and the variations it
// honours; a table's own rows are generated into its package.
package pop3
