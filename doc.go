// Package pop3kit is a POP3 toolkit and server whose protocol core is
// generated from one declarative table.
//
// The table is package spec; package gen (run as gen/cmd/pop3kit-gen)
// turns it into package pop3gen (and docs/CONFORMANCE.md); server and cmd/pop3d are a server on that core.
// Regenerate everything with:
//
//	go generate ./...
package pop3kit

//go:generate go run ./gen/cmd/pop3kit-gen -out pop3gen -pkg pop3gen -docs docs -coverage docs/coverage.txt -readme README.md -runtime pop3
