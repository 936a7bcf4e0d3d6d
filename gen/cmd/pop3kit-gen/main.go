// Command pop3kit-gen turns the pop3kit spec table into a POP3 protocol
// core: a Go package (pop3gen by default) and, optionally,
// docs/CONFORMANCE.md and the README's state diagram.
//
//	go run ./gen/cmd/pop3kit-gen -out pop3gen -pkg pop3gen -docs docs -readme README.md
//
// With -check it writes nothing, prints what would change and exits 1 when
// anything would. It is gen.Main over spec.POP3: a module that extends the
// table runs gen.Main over its own (see package gen).
package main

import (
	"github.com/pop3kit/pop3kit/gen"
	"github.com/pop3kit/pop3kit/spec"
)

func main() { gen.Main(&spec.POP3) }
