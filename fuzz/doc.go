// Package pop3fuzz holds pop3kit's fuzz targets (native go test -fuzz,
// with github.com/AdaLogics/go-fuzz-headers for structured input) and the
// oracles they check against: a slow reference reading of the spec table
// for the lexer, the table's edges for the state machine, models of the
// maildrop for whole sessions, and for the client side's reply parser a
// regexp reading of the reply grammar and net/textproto's DotReader.
//
// Run one target for hours with
//
//	go test ./fuzz -run '^$' -fuzz '^FuzzParse$' -fuzztime 4h
//
// The seed corpora live in fuzz/testdata/fuzz/<Target>/; go test runs
// them as regression tests on every test run.
package pop3fuzz
